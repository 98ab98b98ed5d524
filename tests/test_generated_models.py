"""Generated models round-trip (issue 18, item 4): hypothesis draws whole schemas (tests/model_strategies.py)
and each one goes through what a team does, on a real server, in this process (gamedb.cli.run: no
interpreter start per command):

(a) autogenerate -> upgrade as generated -> check clean;
(b) a drawn change -> check reports it -> autogenerate -> upgrade -> check clean -> downgrade -1 -> the
    schema's catalog equals the one before the change;
(c) downgrade base leaves nothing of the schema.

The default run is bounded and seeded (derandomized; GAMEDB_FUZZ_EXAMPLES examples, 12 unless set);
`nox -s fuzz` runs it long and random. Every failing example found is kept below as a plain test, with
the models text it rendered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from model_strategies import Column, Enum, ForeignKey, Schema, Table, changes, render, schemas

from conftest import REPO, Result
from gamedb.scaffold.files import ServiceLayout, register_in_place, write_service
from gamedb.testing import SCHEMA_CATALOG, ThrowawayDatabase

# models with a foreign key cycle and no use_alter are drawn on purpose: SQLAlchemy warns that it can't sort them
pytestmark = pytest.mark.filterwarnings("ignore:Cannot correctly sort tables:sqlalchemy.exc.SAWarning")

EXAMPLES = int(os.environ.get("GAMEDB_FUZZ_EXAMPLES", "12"))
DERANDOMIZE = os.environ.get("GAMEDB_FUZZ_RANDOM") != "1"
# GAMEDB_FUZZ_NO_SHRINK=1: report failures as drawn (exploring; a kept regression is shrunk by hand)
PHASES = [p for p in Phase if not (os.environ.get("GAMEDB_FUZZ_NO_SHRINK") == "1" and p is Phase.shrink)]

SCHEMA_PY = """\
from __future__ import annotations

from pathlib import Path

from gamedb import SchemaDeclaration

SCHEMA = SchemaDeclaration(
    models="game_{name}.models",
    versions=Path(__file__).with_name("versions"),
    extensions={extensions!r},
)
"""

# Indexes are relations in SCHEMA_CATALOG; their definitions and the comments are compared here too.
DETAILS = """
SELECT 'index ' || indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
UNION ALL
SELECT 'comment ' || c.relname || coalesce('.' || a.attname, '') || ' ' || d.description
FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s
ORDER BY 1
"""


class Bench:
    """One database for every example; each example is a service of its own (gm1, gm2, ...) in it."""

    def __init__(self, database: ThrowawayDatabase, root: Path) -> None:
        self.database = database
        self.root = root
        self.counter = itertools.count(1)

    @contextlib.contextmanager
    def service(self, schema: Schema) -> Iterator[ServiceLayout]:
        """`schema` as a discoverable service in this process (its name replaced by a fresh one)."""
        name = f"gm{next(self.counter)}"
        layout = write_service(self.root, name)
        (layout.package_dir / "schema.py").write_text(SCHEMA_PY.format(name=name, extensions=schema.extensions))
        register_in_place(layout)
        sys.path.insert(0, str(layout.src_dir))
        try:
            yield layout
        finally:
            sys.path.remove(str(layout.src_dir))
            for module in [m for m in sys.modules if m == f"game_{name}" or m.startswith(f"game_{name}.")]:
                del sys.modules[module]

    def gamedb(self, *args: str) -> Result:
        from gamedb.cli import run

        out, err = io.StringIO(), io.StringIO()
        saved = os.environ.get("GAMEDB_URL"), os.getcwd()
        os.environ["GAMEDB_URL"] = self.database.url
        os.chdir(REPO)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run(list(args))
        finally:
            os.chdir(saved[1])
            if saved[0] is None:
                os.environ.pop("GAMEDB_URL", None)
            else:
                os.environ["GAMEDB_URL"] = saved[0]
        return Result(code, out.getvalue(), err.getvalue())

    def catalog(self, name: str) -> list[tuple]:
        return self.database.query(SCHEMA_CATALOG, {"schema": name}) + self.database.query(DETAILS, {"schema": name})


def ok(result: Result, what: str) -> Result:
    assert result.code == 0, f"{what} failed (exit {result.code}):\n{result.output[-4000:]}"
    return result


def write_models(layout: ServiceLayout, schema: Schema) -> None:
    layout.models_file.write_text(render(dataclasses.replace(schema, name=layout.name)))
    for module in [m for m in sys.modules if m == f"game_{layout.name}.models"]:
        del sys.modules[module]


def revision_text(layout: ServiceLayout, slug: str) -> str:
    (found,) = layout.versions_dir.glob(f"*_{slug}.py")
    return found.read_text()


def note(text: str) -> None:
    """hypothesis.note inside a property (shown with a failing example); nothing in a plain test."""
    with contextlib.suppress(InvalidArgument):
        hypothesis.note(text)


def round_trip(bench: Bench, schema: Schema, change: tuple[str, Schema] | None = None) -> None:
    """Properties (a), (b) when a change is given, and (c), for one schema."""
    with bench.service(schema) as layout:
        name = layout.name
        scoped = ("-x", f"schema={name}")
        write_models(layout, schema)
        note(render(schema))
        ok(bench.gamedb("revision", *scoped, "-m", "init"), "revision init")
        ok(bench.gamedb(*scoped, "upgrade", "head"), "upgrade init")
        ok(bench.gamedb("revision", *scoped, "--autogenerate", "-m", "tables"), "autogenerate")
        note(revision_text(layout, "tables"))
        ok(bench.gamedb(*scoped, "upgrade", "head"), "upgrade as generated")
        check = bench.gamedb(*scoped, "check")
        assert check.code == 0 and check.stdout == f"{name}: models match the database\n", check.output  # (a)

        if change is not None:
            what, changed = change
            before = bench.catalog(name)
            write_models(layout, changed)
            note(f"change: {what}\n{render(changed)}")
            drift = bench.gamedb(*scoped, "check")
            assert drift.code == 1, f"check did not report the change ({what}):\n{drift.output}"
            assert f"gamedb: error: schema '{name}':" in drift.stderr, drift.output
            ok(bench.gamedb("revision", *scoped, "--autogenerate", "-m", "change"), "autogenerate the change")
            note(revision_text(layout, "change"))
            ok(bench.gamedb(*scoped, "upgrade", "head"), "upgrade the change")
            check = bench.gamedb(*scoped, "check")
            assert check.code == 0, f"after the change ({what}):\n{check.output}"
            ok(bench.gamedb(*scoped, "downgrade", "-1"), "downgrade -1")
            after = bench.catalog(name)
            assert after == before, (
                f"downgrade -1 of {what} left {sorted(set(after) - set(before))} "
                f"and lost {sorted(set(before) - set(after))}"
            )

        ok(bench.gamedb(*scoped, "downgrade", "base"), "downgrade base")
        assert bench.catalog(name) == []  # (c)
        assert name not in bench.database.schemas()
        leftovers = bench.database.query(
            "SELECT t.oid::regtype::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname IN ('public', 'extensions') AND t.typtype = 'e'"
        )
        assert leftovers == [], f"enum types left outside the schema: {leftovers}"


@pytest.fixture(scope="module")
def bench(admin_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    database = ThrowawayDatabase(admin_uri)
    yield Bench(database, tmp_path_factory.mktemp("generated") / "services")
    database.drop()


FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE,
    deadline=None,
    phases=PHASES,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(schema=schemas("gm"))
def test_generated_models_round_trip_as_generated(bench: Bench, schema: Schema) -> None:
    round_trip(bench, schema)


@FUZZ
@given(data=st.data())
def test_a_drawn_change_is_drift_then_applied_then_undone(bench: Bench, data: st.DataObject) -> None:
    schema = data.draw(schemas("gm", max_tables=2))
    change = data.draw(changes(schema))
    round_trip(bench, schema, change)


# ---------------------------------------------------------------------------------------------------------
# Failing examples the properties found, shrunk, kept as plain tests.


def one_table(*columns: Column, key: str = "serial", **table: object) -> Schema:
    return Schema("gm", (), (Table("t0", key, columns, **table),))


def test_kept_a_foreign_key_cycle_between_new_tables(bench: Bench) -> None:
    """CTFd's users.team_id <-> teams.captain_id: the revision created t0 with a key to t1 before t1 existed
    (42P01 at the first upgrade)."""
    cycle = Schema(
        "gm",
        (),
        (
            Table("t0", "serial", (Column("t1_id", "bigint"),), foreign_keys=(ForeignKey(("t1_id",), "t1", ("id",)),)),
            Table(
                "t1",
                "identity",
                (Column("t0_id", "integer"),),
                foreign_keys=(ForeignKey(("t0_id",), "t0", ("id",), "SET NULL", deferrable=True),),
            ),
        ),
    )
    unlinked = dataclasses.replace(cycle.tables[1], columns=(), foreign_keys=())
    round_trip(bench, cycle, ("drop_column", dataclasses.replace(cycle, tables=(cycle.tables[0], unlinked))))


def test_kept_a_type_decorator_whose_init_takes_the_enum_it_stores(bench: Bench) -> None:
    """Level(Mood) was written `Level()`: TypeError, missing 'enum_class', at the first upgrade (fixed on
    i18-types: written as its database type)."""
    round_trip(bench, one_table(Column("alpha", "level")))


def test_kept_a_type_decorator_whose_init_takes_no_arguments(bench: Bench) -> None:
    """GUID() was written `GUID(as_uuid=False)` (its impl's arguments): TypeError at the first upgrade."""
    round_trip(bench, one_table(Column("alpha", "guid")))


def test_kept_a_type_decorator_over_jsonb(bench: Bench) -> None:
    """Document() was written with `astext_type=Text()` and Text imported by nothing: NameError."""
    round_trip(bench, one_table(Column("alpha", "document")))


def test_kept_a_jsonb_function_default(bench: Bench) -> None:
    """server_default=func.jsonb('{}'): stored as '{}'::jsonb, drift forever ('jsonb(:jsonb_1)' in the models)."""
    round_trip(bench, one_table(Column("alpha", "jsonb", default="sa.func.jsonb('{}')")))


def test_kept_a_default_of_two_quote_characters(bench: Bench) -> None:
    """server_default="''" (the two-character string) was written as the empty string (Alembic strips a quote
    from each end): check reported drift right after the upgrade."""
    round_trip(bench, one_table(Column("alpha", "varchar", default="\"''\"")))


def test_kept_a_check_added_to_the_models(bench: Bench) -> None:
    """A CHECK added to a table: check said the models match (CHECKs were not compared; fixed on i18-types)."""
    schema = one_table(Column("alpha", "integer"))
    table = dataclasses.replace(schema.tables[0], checks=(("id_positive", "id > 0"),))
    round_trip(bench, schema, ("add_check", dataclasses.replace(schema, tables=(table,))))


def test_kept_a_str_enum_member_as_server_default(bench: Bench) -> None:
    """server_default=Status.open (Prefect's work pools): the revision got `server_default=<Status.open: 'open'>`,
    a SyntaxError at the first upgrade."""
    schema = dataclasses.replace(
        one_table(Column("alpha", "enum:status", nullable=False, default="Status.open")),
        enums=(Enum("status", ("open", "closed")),),
    )
    round_trip(bench, schema)


def test_kept_a_check_whose_convention_name_passes_63_bytes(bench: Bench) -> None:
    """Prefect's ck_block_document_reference__ck_block_document_reference__no_self_reference: PostgreSQL has the
    name CREATE TABLE truncated (a hash suffix), check compared the untruncated one: drift right after the upgrade."""
    name = "alpha_is_never_negative_whatever_the_row_says_about_it_in_the_end"
    round_trip(bench, one_table(Column("alpha", "integer"), checks=((name, "alpha >= 0"),)))
