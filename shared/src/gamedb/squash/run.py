"""One squash: check the range, list its data steps, build the schema through the old chain on a
throwaway database, write the new revision from it, build another database through the new
revision alone, compare the two, and only then replace the files.

Invariant: the versions directory is changed only after the proof passed; a refusal changes nothing.
Databases are made on GAMEDB_TEST_URL's server (an admin URL of a disposable server) when set, else
on an embedded PostgreSQL of this process's own, and dropped afterwards with the roles made for them.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.script import Script
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.exc import DBAPIError

from gamedb.discovery import SchemaInfo
from gamedb.errors import SquashRefused
from gamedb.migrate.checksums import file_checksum
from gamedb.migrate.config import check_revision_graph, make_config, script_directory
from gamedb.migrate.run_options import set_run_options
from gamedb.project import Project
from gamedb.squash.catalog import catalog_snapshot, differences
from gamedb.squash.data_steps import DataStep, find_data_steps
from gamedb.squash.dump import default_grant_resets, dump_schema, dump_statements, with_resets
from gamedb.squash.revision_file import render_squash

if TYPE_CHECKING:
    from gamedb.testing.checks import ThrowawayDatabase


@dataclass
class SquashResult:
    """What a squash wrote and how it was proven."""

    schema: str
    revision: str
    path: Path
    replaced: list[str]
    removed: list[Path]
    data_steps: list[DataStep] = field(default_factory=list)
    with_data: bool = True
    facts: int = 0  # lines of the compared snapshot
    rows: int = 0  # rows (and sequence positions) compared


def squash_chain(project: Project, schemas: dict[str, SchemaInfo], schema: SchemaInfo, through: str) -> list[Script]:
    """The revisions from the schema's first through `through` (an id or a unique prefix), oldest first;
    refused unless they form one straight line with nothing branching off below `through`."""
    script = script_directory(make_config(project, schemas, schema))
    check_revision_graph(script, schema)
    try:
        target = script.get_revision(through)
    except (CommandError, RevisionError) as exc:
        raise SquashRefused(f"schema {schema.name!r}: --through {through!r}: {exc}") from None
    if target is None:
        raise SquashRefused(f"schema {schema.name!r}: --through {through!r} is not a revision")
    chain = [target]
    while chain[-1].down_revision is not None:
        down = chain[-1].down_revision
        if not isinstance(down, str):
            raise SquashRefused(
                f"schema {schema.name!r}: {chain[-1].revision} merges {', '.join(down)}: a squash covers one "
                "straight line of revisions; squash through a revision below the merge"
            )
        chain.append(script.get_revision(down))
    chain.reverse()
    if len(chain) < 2:
        raise SquashRefused(f"schema {schema.name!r}: {target.revision} is the first revision: nothing to squash")
    for below, above in itertools.pairwise(chain):
        others = sorted(set(below.nextrev) - {above.revision})
        if others:
            raise SquashRefused(
                f"schema {schema.name!r}: revision {', '.join(others)} branches off {below.revision}, inside the "
                f"range; merge it first or squash through a revision below {below.revision}"
            )
    return chain


def squash_schema(
    project: Project,
    schemas: dict[str, SchemaInfo],
    schema: SchemaInfo,
    through: str,
    *,
    message: str | None = None,
    drop_data_steps: bool = False,
    admin: str | None = None,
) -> SquashResult:
    """Replace `schema`'s revisions from its first through `through` by one revision with its id,
    after proving on throwaway databases that it builds the same schema (and rows)."""
    chain = squash_chain(project, schemas, schema, through)
    revision = chain[-1].revision
    steps = [step for r in chain for step in find_data_steps(r.revision, Path(r.path))]
    opaque = [step for step in steps if not step.plain]
    if opaque and not drop_data_steps:
        listed = "; ".join(map(str, opaque))
        raise SquashRefused(
            f"schema {schema.name!r}: {len(opaque)} data step(s) in the range are not plain SQL: {listed}; "
            "rewrite them as op.execute of SQL, or add --drop-data-steps if a fresh database no longer needs them"
        )
    with_data = not drop_data_steps
    replaced = [r.revision for r in chain]
    from gamedb.testing.checks import ThrowawayDatabase, admin_uri

    admin = admin or admin_uri()
    old_db = ThrowawayDatabase(admin)
    new_db = None
    try:
        _build(project, schemas, schema, old_db, revision)
        statements = with_resets(
            dump_statements(dump_schema(old_db.libpq, schema.name, with_data=with_data), schema.owner_role),
            default_grant_resets(old_db.libpq, schema.name, schema.owner_role),
        )
        text = render_squash(
            schema=schema.name,
            revision=revision,
            message=message or f"squash of {schema.name} through {revision}",
            replaced=replaced,
            checksums={r.revision: file_checksum(Path(r.path)) for r in chain},
            statements=statements,
            dropped_steps=[str(step) for step in opaque],
            with_data=with_data,
        )
        with tempfile.TemporaryDirectory(prefix="gamedb-squash-") as scratch:
            trial = Path(scratch) / f"{revision}_squash.py"
            trial.write_text(text, encoding="utf-8")
            new_db = ThrowawayDatabase(admin)
            _build(project, schemas, dataclasses.replace(schema, versions_dir=Path(scratch)), new_db, revision)
        old = catalog_snapshot(old_db.libpq, schema.name, with_rows=with_data)
        new = catalog_snapshot(new_db.libpq, schema.name, with_rows=with_data)
    finally:  # the second first: the roles were made in the first, and the second holds grants to them
        if new_db is not None:
            new_db.drop()
        old_db.drop()
    if old != new:
        raise SquashRefused(
            f"schema {schema.name!r}: the squashed revision would not build what {replaced[0]}..{revision} build; "
            f"nothing written: {'; '.join(differences(old, new))}"
        )
    path = _replace_files(schema, chain, revision, message or "squash", text)
    rows = sum(1 for line in old if line.startswith("row ") or (line.startswith("sequence ") and " at " in line))
    return SquashResult(
        schema.name, revision, path, replaced, [Path(r.path) for r in chain], steps, with_data, len(old), rows
    )


def _build(
    project: Project, schemas: dict[str, SchemaInfo], schema: SchemaInfo, db: ThrowawayDatabase, revision: str
) -> None:
    """Roles applied (as in production: revisions run as the owner, grants come from its defaults),
    then the schema upgraded to `revision` with the revision files of `schema.versions_dir`."""
    from gamedb.roles.apply import apply_roles

    url = db.url
    apply_roles(url, [schema])
    config = make_config(project, schemas, schema)
    set_run_options(config, url=url, logging_configured=True)
    try:
        command.upgrade(config, revision)
    except DBAPIError as exc:
        from gamedb.server.connections import db_error_line

        where = "the squashed revision" if "gamedb-squash-" in str(schema.versions_dir) else "the old revisions"
        raise SquashRefused(
            f"schema {schema.name!r}: building through {where} failed, nothing written: {db_error_line(exc)}"
        ) from None


def _slug(message: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "squash"


def _replace_files(schema: SchemaInfo, chain: list[Script], revision: str, message: str, text: str) -> Path:
    """Write the new file, then remove the old ones (a `.tmp` name until then: Alembic reads only *.py)."""
    name = f"{datetime.now(UTC):%Y_%m_%d}_{revision}_{_slug(message)}.py"
    final = schema.versions_dir / name
    staging = final.with_suffix(".py.tmp")
    staging.write_text(text, encoding="utf-8")
    for r in chain:
        Path(r.path).unlink()
    os.replace(staging, final)
    return final
