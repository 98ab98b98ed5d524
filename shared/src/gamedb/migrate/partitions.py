"""`gamedb partitions -x schema=S --ahead N`: monthly partitions made ahead of time.

For every table of the schema range-partitioned on one date or timestamp column (a model's
`postgresql_partition_by="RANGE (col)"`), one partition per calendar month (UTC) from the current
month to N months ahead, named `<table>_pYYYYMM`, created as the schema's owner role (so the owner's
default privileges give `<s>_rw` its grants at once) while holding the schema's migration lock.
Months already covered (by that name or by a partition a revision made) are left alone: a rerun
makes only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from psycopg import sql
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from gamedb.discovery import SchemaInfo
from gamedb.errors import GamedbError
from gamedb.migrate.session import _set_owner_role, acquire_schema_lock

RANGE_TABLES = text(
    "SELECT c.relname, a.attname, format_type(a.atttypid, NULL), pt.partstrat::text, pt.partnatts"
    " FROM pg_partitioned_table pt JOIN pg_class c ON c.oid = pt.partrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]"
    " WHERE n.nspname = :schema AND NOT c.relispartition ORDER BY c.relname"
)
TIME_TYPES = frozenset({"date", "timestamp without time zone", "timestamp with time zone"})


class PartitionsFailed(GamedbError):
    """A partition could not be made (the line names the table and the server's reason)."""

    exit_code = 1


@dataclass(frozen=True)
class Outcome:
    """What happened to one month of one table: created, existing, covered (by another partition) or skipped."""

    table: str
    partition: str | None
    start: date | None
    end: date | None
    state: str
    note: str = ""


def months(first: date, ahead: int) -> list[tuple[date, date]]:
    """(first day, first day of the next month) for `first`'s month and `ahead` months after it."""
    result = []
    year, month = first.year, first.month
    for _ in range(ahead + 1):
        nyear, nmonth = (year + 1, 1) if month == 12 else (year, month + 1)
        result.append((date(year, month, 1), date(nyear, nmonth, 1)))
        year, month = nyear, nmonth
    return result


def make_partitions(engine: Engine, schema: SchemaInfo, ahead: int) -> list[Outcome]:
    """Create the missing monthly partitions of every range-partitioned table of `schema`."""
    if ahead < 0:
        raise GamedbError("--ahead must be 0 or more (months after the current one)")
    lock = acquire_schema_lock(engine, schema)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT set_config('TimeZone', 'UTC', false)"))  # months begin at UTC midnight
            _set_owner_role(connection, schema)
            connection.commit()
            return _make(connection, schema, ahead)
    finally:
        lock.release()


def _make(connection: Connection, schema: SchemaInfo, ahead: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    today = connection.execute(text("SELECT (now() AT TIME ZONE 'UTC')::date")).scalar_one()
    connection.commit()
    for table, _column, kind, strategy, columns in connection.execute(RANGE_TABLES, {"schema": schema.name}).all():
        if strategy != "r" or columns != 1 or kind not in TIME_TYPES:
            outcomes.append(
                Outcome(table, None, None, None, "skipped", "not range-partitioned on one date/time column")
            )
            continue
        for start, end in months(today, ahead):
            name = f"{table}_p{start:%Y%m}"
            if len(name) > 63:
                raise PartitionsFailed(f"partition name {name!r} is longer than 63 characters; shorten table {table!r}")
            exists = connection.execute(
                text("SELECT to_regclass(:name)"), {"name": sql.Identifier(schema.name, name).as_string(None)}
            ).scalar()
            if exists is not None:
                outcomes.append(Outcome(table, name, start, end, "existing"))
                continue
            statement = sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(schema.name, name),
                sql.Identifier(schema.name, table),
                sql.Literal(start.isoformat()),
                sql.Literal(end.isoformat()),
            )
            try:
                connection.execute(text(statement.as_string(None)))
                connection.commit()
            except DBAPIError as exc:
                connection.rollback()
                code = getattr(exc.orig, "sqlstate", None)
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
                if code == "42P17":  # would overlap a partition of another name: that month is covered
                    outcomes.append(Outcome(table, name, start, end, "covered", reason))
                    continue
                raise PartitionsFailed(f"schema {schema.name!r}: partition {name} of {table}: {reason}") from None
            outcomes.append(Outcome(table, name, start, end, "created"))
    return outcomes
