"""Running the role model against a server: apply it, add logins, report drift."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy import URL

from gamedb.discovery import SchemaInfo
from gamedb.errors import RoleChangeFailed, RoleNotManaged
from gamedb.extensions import extension_statements
from gamedb.names import validate_login_name
from gamedb.roles.check import Finding, check_roles
from gamedb.roles.deviations import repair_statements
from gamedb.roles.model import (
    DEPLOYER_SETTINGS,
    MIGRATOR,
    NOT_MANAGED_SQLSTATE,
    Statement,
    global_statements,
    login_statements,
    model_role_names,
    schema_statements,
    session_settings,
)
from gamedb.server.connections import db_error_line, one_value, psycopg_connect

# Keys of the transaction-level advisory lock every role change of gamedb takes first ("role", 0). The
# model's statements update rows every schema shares (the database's ACL, schema `alembic`, role
# `migrator`): two transactions doing so at once fail with "tuple concurrently updated" (XX000) or a
# duplicate pg_authid row (23505), e.g. two `gamedb move` of different schemas to one server.
ROLE_CHANGE_LOCK = (0x726F6C65, 0)


def serialize_role_changes(conn: psycopg.Connection, say: Callable[[str], None] | None = None) -> None:
    """Wait, inside `conn`'s transaction, until no other gamedb role change runs on this server;
    say so once when there is one to wait for. Released when the transaction ends."""
    if one_value(conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", ROLE_CHANGE_LOCK)):
        return
    message = "waiting for another gamedb role change on this server (roles apply, roles login or a move) to finish"
    if say is None:
        print(message, file=sys.stderr)
    else:
        say(message)
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", ROLE_CHANGE_LOCK)


def model_statements(schemas: Iterable[SchemaInfo], *, adopt: Iterable[str] = ()) -> list[Statement]:
    """Everything `roles apply` runs: global roles, declared extensions, each schema, then the repair
    of every deviation `roles check` reports (for these schemas and every role gamedb marked)."""
    schemas = list(schemas)
    adopted = frozenset(adopt)
    statements = global_statements(adopted)
    # extension_statements quotes the names it was given, after discovery validated them
    statements += [sql.SQL(s) for s in extension_statements(e for info in schemas for e in info.extensions)]
    for info in schemas:
        statements += schema_statements(info, adopted)
    return statements + repair_statements(schemas)


def apply_roles(url: URL | str, schemas: list[SchemaInfo], *, adopt: Iterable[str] = ()) -> None:
    """Create or repair every role, grant and setting of the model, in one transaction; roles in
    `adopt` are taken over even though gamedb did not create them."""
    with psycopg_connect(url) as conn, _refused_as_one_line("roles apply"):
        serialize_role_changes(conn)
        for statement in model_statements(schemas, adopt=adopt):
            conn.execute(statement)
        conn.commit()


def create_login(
    url: URL | str,
    login: str,
    schemas: dict[str, SchemaInfo],
    *,
    schema: SchemaInfo | None,
    password: str | None,
    adopt: bool = False,
) -> None:
    """A service login (member of `<schema>_rw`, with its timeouts) or, without schema, a deployer."""
    validate_login_name(login, model_role_names(schemas.values()))
    group, settings = (schema.rw_role, session_settings(schema)) if schema else (MIGRATOR, DEPLOYER_SETTINGS)
    how = f"gamedb roles login {login} " + (f"--schema {schema.name}" if schema else "--migrator") + " --adopt"
    with psycopg_connect(url) as conn, _refused_as_one_line(f"roles login {login}"):
        serialize_role_changes(conn)
        verifier = None
        if password is not None:
            # libpq computes the SCRAM verifier client-side: the password itself never reaches the server
            verifier = conn.pgconn.encrypt_password(password.encode(), login.encode(), b"scram-sha-256").decode()
        statements = login_statements(
            login, group, settings, verifier, schema=schema.name if schema else None, adopt=adopt, how=how
        )
        for statement in statements:
            conn.execute(statement)
        conn.commit()


@contextmanager
def _refused_as_one_line(what: str) -> Iterator[None]:
    """A statement the server refused (no privilege, a role that is missing, a role gamedb does not
    manage) becomes one masked line; leaving the connection's block rolls the transaction back, so
    nothing of it is kept."""
    try:
        yield
    except psycopg.Error as exc:
        if exc.sqlstate == NOT_MANAGED_SQLSTATE and exc.diag.message_primary:
            raise RoleNotManaged(f"{what}: {exc.diag.message_primary}") from None
        raise RoleChangeFailed(f"{what}: {db_error_line(exc)}; nothing changed") from None


def role_findings(url: URL | str, schemas: list[SchemaInfo]) -> list[Finding]:
    """Everything that differs from the model."""
    with psycopg_connect(url) as conn, _refused_as_one_line("roles check"):
        return check_roles(conn, schemas)
