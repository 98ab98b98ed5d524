"""`gamedb roles apply|sql|check|login`: the least-privilege roles on every server in use."""

from __future__ import annotations

import getpass
import json
import os
import sys
from argparse import Namespace
from typing import TYPE_CHECKING, Any

from gamedb.errors import GamedbError

if TYPE_CHECKING:
    from gamedb.discovery import SchemaInfo
    from gamedb.project import Project


def add_commands(sub: Any) -> None:
    """roles and its actions on gamedb's subparsers."""
    roles = sub.add_parser("roles", help="Least-privilege roles: owner / migrator / rw, logins, drift.")
    actions = roles.add_subparsers(dest="roles_action", required=True)
    for action, text in (
        ("apply", "create or repair every role, grant and setting (idempotent)"),
        ("sql", "print what apply runs, for a DBA to review"),
    ):
        parser = actions.add_parser(action, help=text, description=f"{text}.")
        parser.add_argument("--schema", help="only this schema (plus the global part)")
        parser.add_argument(
            "--adopt",
            action="append",
            default=[],
            metavar="ROLE",
            help="take over this existing role gamedb did not create",
        )
    drift = "report drift from the model; exit 1 on any"
    check = actions.add_parser("check", help=drift, description=f"{drift[0].upper()}{drift[1:]}.")
    check.add_argument("--json", action="store_true")
    login = actions.add_parser(
        "login",
        help="create or update a login",
        description="Create or update a login: a service's (--schema NAME) or a deployer (--migrator).",
    )
    login.add_argument("name")
    target = login.add_mutually_exclusive_group(required=True)
    target.add_argument("--schema", help="a service login: DML on this schema only, with its timeouts")
    target.add_argument("--migrator", action="store_true", help="a deployer login that may run migrations")
    login.add_argument("--password-env", metavar="VAR", help="take the password from this environment variable")
    login.add_argument("--adopt", action="store_true", help="take over an existing role gamedb did not create")
    roles.set_defaults(gamedb_cmd=cmd_roles)


def cmd_roles(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """Roles on every server in use: each gets migrator and the roles of the schemas placed on it."""
    from gamedb.discovery import get_schema
    from gamedb.names import validate_login_name
    from gamedb.roles.apply import apply_roles, create_login, model_statements, role_findings
    from gamedb.roles.model import MIGRATOR, model_role_names, render
    from gamedb.server.placement import DEFAULT_SERVER, by_server, route_schemas, servers_of

    action = options.roles_action
    only = getattr(options, "schema", None)
    selected = [get_schema(only, schemas)] if only and action != "login" else list(schemas.values())
    if action == "sql":
        groups = servers_of(project, [info.name for info in selected], known=schemas)
        for server, names in sorted(groups.items(), key=lambda item: item[0] != DEFAULT_SERVER):
            if len(groups) > 1:
                print(f"-- server {server}")
            print(render(model_statements([schemas[n] for n in names], adopt=options.adopt)), end="")
        return 0
    if action == "login":
        schema = None if options.migrator else get_schema(options.schema, schemas)
        validate_login_name(options.name, model_role_names(schemas.values()))  # before asking for a password
        every = route_schemas(project, schemas)
        chosen = every.values() if schema is None else [every[schema.name]]  # a deployer: every server
        servers = {route.server: route.url for route in chosen}
        password = read_password(options)
        for url in servers.values():
            create_login(url, options.name, schemas, schema=schema, password=password, adopt=options.adopt)
        where = f" on {', '.join(servers)}" if len(servers) > 1 else ""
        print(f"login {options.name}: member of {schema.rw_role if schema else MIGRATOR}{where}")
        if password is None:  # after the work: a failure stays one line
            print("no password set (no --password-env and no password typed)", file=sys.stderr)
        return 0
    placed = route_schemas(project, [info.name for info in selected] if only else schemas)
    groups_by_server = by_server(placed)
    several = len(groups_by_server) > 1
    if action == "apply":
        for server, names in groups_by_server.items():
            apply_roles(placed[names[0]].url, [schemas[n] for n in names], adopt=options.adopt)
            where = f" on {server}" if several else ""
            roles_text = ", ".join(f"{schemas[n].owner_role}/{schemas[n].rw_role}" for n in names)
            print(f"roles applied{where}: {MIGRATOR} and {roles_text}")
        return 0
    findings = []
    for server, names in groups_by_server.items():
        for finding in role_findings(placed[names[0]].url, [schemas[n] for n in names]):
            findings.append((server, finding))
    if options.json:
        print(json.dumps([{**f.as_json(), "server": server} for server, f in findings], indent=2))
    else:
        for server, finding in findings:
            print(f"[{server}] {finding}" if several else finding)
        print("roles match the model" if not findings else f"{len(findings)} finding(s): run gamedb roles apply")
    return 1 if findings else 0


def read_password(options: Namespace) -> str | None:
    """From --password-env, else a prompt when there is a terminal, else none (trust/peer/cert logins)."""
    if options.password_env:
        value = os.environ.get(options.password_env)
        if not value:
            raise GamedbError(f"environment variable {options.password_env} is not set or empty")
        return value
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(f"password for {options.name}: ")
    if first != getpass.getpass("again: "):
        raise GamedbError("the two passwords differ; nothing changed")
    return first or None
