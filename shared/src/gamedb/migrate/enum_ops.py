"""Operations on a schema's enum types, called by revision files that autogenerate writes.

Each works online and in `--sql` output. PostgreSQL cannot use an enum value in the transaction that
added it, so `add_values` commits the revision's transaction first and adds the values in one of
their own (idempotently: `IF NOT EXISTS`, a failed revision can run again); the rest of the revision
then runs in a new transaction. Values cannot be removed or reordered in place: `recreate` builds
the type anew and converts every column that uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from gamedb.names import quote_ident, quote_literal

DO_TAG = "$gamedb$"


def type_name(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _labels(values: Sequence[str]) -> str:
    for value in values:
        if DO_TAG in value:
            raise ValueError(f"enum value {value!r} contains {DO_TAG}")
    return ", ".join(quote_literal(v) for v in values)


def create_sql(schema: str, name: str, values: Sequence[str]) -> str:
    return f"CREATE TYPE {type_name(schema, name)} AS ENUM ({_labels(values)})"


def create(schema: str, name: str, values: Sequence[str]) -> None:
    """CREATE TYPE schema.name AS ENUM (values)."""
    op.execute(create_sql(schema, name, values))


def drop(schema: str, name: str) -> None:
    """DROP TYPE schema.name (fails while a column still uses it)."""
    op.execute(f"DROP TYPE {type_name(schema, name)}")


def add_values_sql(schema: str, name: str, new: Sequence[str], final: Sequence[str]) -> list[str]:
    """ALTER TYPE ... ADD VALUE IF NOT EXISTS for each of `new`, placed where `final` (the order wanted) puts it.

    Each goes after its predecessor in `final` (added already, or there before); one that comes first
    goes before the first value that was there before.
    """
    missing = [v for v in new if v not in final]
    if missing:
        raise ValueError(f"values {missing} are not in the final list {list(final)}")
    existing = [v for v in final if v not in new]
    statements = []
    for value in (v for v in final if v in new):
        i = list(final).index(value)
        if i > 0:
            place = f" AFTER {quote_literal(final[i - 1])}"
        elif existing:
            place = f" BEFORE {quote_literal(existing[0])}"
        else:
            place = ""
        statements.append(f"ALTER TYPE {type_name(schema, name)} ADD VALUE IF NOT EXISTS {quote_literal(value)}{place}")
    return statements


def add_values(schema: str, name: str, new: Sequence[str], final: Sequence[str]) -> None:
    """Add `new` values to the type so that its values read `final`.

    Committed before the rest of the revision runs, so the revision may use the new values.
    """
    statements = add_values_sql(schema, name, new, final)
    context = op.get_context()
    if context.as_sql:
        _offline_commit_around(statements)
        return
    with context.autocommit_block():
        for statement in statements:
            op.execute(statement)


def _offline_commit_around(statements: list[str]) -> None:
    """In a script: end the revision's transaction, add the values in one of their own, go on."""
    from alembic import context as environment

    from gamedb.migrate.environment import target_schema
    from gamedb.migrate.session import offline_transaction_settings

    impl = op.get_context().impl
    prelude = offline_transaction_settings(target_schema(environment))
    impl.static_output("COMMIT;\n\nBEGIN;\n")  # the values, in a transaction of their own
    for statement in [*prelude, *statements]:
        op.execute(statement)
    impl.static_output("COMMIT;\n\nBEGIN;\n")  # the rest of the revision, as the script's others
    for statement in prelude:
        op.execute(statement)


def recreate_sql(schema: str, name: str, values: Sequence[str]) -> str:
    """One DO block: the type made anew with `values`, every column (and array column) converted.

    Column defaults are kept; a row holding a value that is gone makes it fail (22P02), and so does
    a view, a rule or a function signature that uses the type: those are the revision's to handle.
    """
    target = type_name(schema, name)
    old = type_name(schema, name + "__gamedb_old")
    return f"""DO {DO_TAG}
DECLARE
    col record;
    cols jsonb := '[]';
BEGIN
    FOR col IN
        SELECT a.attrelid::regclass::text AS tbl, a.attname AS name, a.atttypid = t.oid AS scalar,
               pg_get_expr(d.adbin, d.adrelid) AS dflt
        FROM pg_type t
        JOIN pg_attribute a ON a.atttypid IN (t.oid, t.typarray) AND NOT a.attisdropped AND a.attnum > 0
        JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE t.oid = {quote_literal(target)}::regtype
    LOOP
        cols := cols || jsonb_build_object('tbl', col.tbl, 'name', col.name, 'scalar', col.scalar, 'dflt', col.dflt);
        IF col.dflt IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', col.tbl, col.name);
        END IF;
    END LOOP;
    ALTER TYPE {target} RENAME TO {quote_ident(name + "__gamedb_old")};
    CREATE TYPE {target} AS ENUM ({_labels(values)});
    FOR col IN SELECT * FROM jsonb_to_recordset(cols) AS x(tbl text, name text, scalar boolean, dflt text) LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING %I::text%s::%s',
                       col.tbl, col.name, {quote_literal(target)} || CASE WHEN col.scalar THEN '' ELSE '[]' END,
                       col.name, CASE WHEN col.scalar THEN '' ELSE '[]' END,
                       {quote_literal(target)} || CASE WHEN col.scalar THEN '' ELSE '[]' END);
        IF col.dflt IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', col.tbl, col.name, col.dflt);
        END IF;
    END LOOP;
    DROP TYPE {old};
END {DO_TAG}"""


def recreate(schema: str, name: str, values: Sequence[str]) -> None:
    """Make the type's values exactly `values` (removing or reordering values), converting its columns."""
    op.execute(recreate_sql(schema, name, values))
