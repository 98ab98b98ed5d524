"""The squashed revision's file, written from the statements of the old chain, with the markers
gamedb.migrate.squash_markers reads back (`squashed_revisions`, `squashed_checksums`).
"""

from __future__ import annotations

import re

from gamedb.names import create_schema_sql, drop_schema_sql
from gamedb.squash.statements import escape_for_text

# squawk rules that the squash's own SQL breaks only in form: pg_dump writes an identity column as
# CREATE TABLE, then ALTER TABLE ... ADD GENERATED ... AS IDENTITY, which squawk reports on a table
# the same file created (it leaves such tables alone for its other rules). The file carries a
# lint-ignore marker for each one its statements break, so a squashed history lints as it did.
NEW_TABLE_FORMS = {
    "ban-alter-identity": re.compile(r"\bALTER\s+TABLE\b.*\bADD\s+GENERATED\b.*\bAS\s+IDENTITY\b", re.I | re.S),
}

FILE = '''\
"""{message}

Revision ID: {revision}
Revises: (none: squashes {count} revisions, {first} through {revision})
Written by `gamedb squash`: the upgrade builds schema {schema} exactly as the revisions it replaced did
(compared catalog against catalog{data_note} on a throwaway database before this file was written).
It only runs on a database that starts from base; a database at {revision} or later never runs it.
"""

from __future__ import annotations

from alembic import op

revision: str = {revision!r}
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = ({schema!r},)
depends_on: str | None = None

# what this revision replaced, oldest first, and the checksums their files had (gamedb reads these lines)
squashed_revisions: tuple[str, ...] = {replaced!r}
squashed_checksums: dict[str, str] = {checksums!r}
{dropped}{markers}
STATEMENTS: tuple[str, ...] = (
{statements}
)


def upgrade() -> None:
    op.execute({create_schema!r})
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute({drop_schema!r})
'''


def _literal(statement: str) -> str:
    lines = statement.split("\n")
    parts = [repr(line + "\n") for line in lines[:-1]] + [repr(lines[-1])]
    return "\n".join(f"    {part}" for part in parts) + ","


def render_squash(
    *,
    schema: str,
    revision: str,
    message: str,
    replaced: list[str],
    checksums: dict[str, str],
    statements: list[str],
    dropped_steps: list[str],
    with_data: bool,
) -> str:
    """The text of the squashed revision file."""
    dropped = ""
    if dropped_steps:
        lines = "\n".join(f"#   {step}" for step in dropped_steps)
        dropped = f"\n# data steps left out on purpose (--drop-data-steps):\n{lines}\n"
    markers = "".join(
        f"# gamedb: lint-ignore {rule} -- pg_dump's form of what this revision creates, on a table it creates\n"
        for rule, form in NEW_TABLE_FORMS.items()
        if any(form.search(statement) for statement in statements)
    )
    return FILE.format(
        markers=f"\n{markers}" if markers else "",
        message=message,
        revision=revision,
        count=len(replaced),
        first=replaced[0],
        schema=schema,
        data_note=" and row against row" if with_data else "",
        replaced=tuple(replaced),
        checksums=checksums,
        dropped=dropped,
        statements="\n".join(_literal(escape_for_text(s)) for s in statements),
        create_schema=create_schema_sql(schema),
        drop_schema=drop_schema_sql(schema),
    )
