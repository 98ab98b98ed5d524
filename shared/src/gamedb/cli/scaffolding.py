"""`gamedb new-service NAME`: a new service folder, its init revision, installed."""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import TYPE_CHECKING, Any

from gamedb.cli.output import relative

if TYPE_CHECKING:
    from gamedb.discovery import SchemaInfo
    from gamedb.project import Project


def add_commands(sub: Any) -> None:
    """new-service on gamedb's subparsers."""
    new = sub.add_parser("new-service", help="Create services/NAME: package, models, init revision, tests.")
    new.add_argument("name", help="the schema name (and service folder)")
    new.add_argument("--no-install", action="store_true", help="do not pip install it into this environment")
    new.set_defaults(gamedb_cmd=cmd_new_service)


def cmd_new_service(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """Create the service, then list its files and the next commands."""
    from gamedb.scaffold.new_service import create_service

    made = create_service(project, schemas, options.name, install=not options.no_install)
    name = options.name
    print(f"created services/{name} (distribution {made.layout.distribution}):")
    for path in made.files:
        print(f"  {relative(str(path), project)}")
    if made.init_revision is not None:
        print(f"  {relative(str(made.init_revision), project)}  (init revision, branch label {name})")
    print(f"added {relative(str(made.layout.versions_dir), project)} to alembic.ini")
    if made.installed:
        print(f"installed {made.layout.distribution} (editable) into {sys.prefix}")
    else:
        print(f"not installed: pip install -e services/{name}")
    print("next:")
    print(f"  gamedb -x schema={name} upgrade head")
    print(f'  gamedb revision -x schema={name} --autogenerate -m "add tables"   # after editing models.py')
    print(f"  nox -s \"check(schema='{name}')\"")
    return 0
