"""Benchmark: comparing N declared objects (half views, half functions, all matching the database).

Run with `python shared/bench/objects_bench.py --objects 50` on an embedded server of its own. It
times gamedb's comparison (`gamedb.autogen.objects.object_ops`, what `check` adds per schema), best
of three; when `alembic_utils` is installed (it is not a gamedb dependency) it also times its
comparison of the same entities through Alembic's `compare_metadata`, once.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gamedb.autogen.objects import object_ops
from gamedb.objects import Function, View
from gamedb.testing import ThrowawayDatabase, admin_uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=50)
    n = parser.parse_args().objects
    views, functions = n // 2, n - n // 2
    db = ThrowawayDatabase(admin_uri())
    try:
        db.query("CREATE SCHEMA s; CREATE TABLE s.t (id int PRIMARY KEY, a int)")
        for i in range(views):
            db.query(f"CREATE VIEW s.v{i} AS SELECT id, a + {i} AS x FROM s.t")
        for i in range(functions):
            db.query(f"CREATE FUNCTION s.f{i}(p int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT p + {i} $$")
        declared = (
            *(View(f"v{i}", f"SELECT id, a + {i} AS x FROM t") for i in range(views)),
            *(
                Function(f"f{i}(p int)", f"RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT p + {i} $$")
                for i in range(functions)
            ),
        )
        engine = sa.create_engine(db.url)
        with engine.connect() as conn:
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                found = object_ops(conn, "s", None, declared)
                best = min(best, time.perf_counter() - started)
                conn.rollback()
        print(f"gamedb.autogen.objects: {n} declared objects, {len(found)} differences, {best:.3f} s (best of 3)")
        if importlib.util.find_spec("alembic_utils") is not None:
            print(f"alembic_utils: {n} declared objects, {_alembic_utils(engine, views, functions):.3f} s")
        engine.dispose()
    finally:
        db.drop()


def _alembic_utils(engine: sa.Engine, views: int, functions: int) -> float:
    from alembic_utils.pg_function import PGFunction
    from alembic_utils.pg_view import PGView
    from alembic_utils.replaceable_entity import register_entities

    entities = [
        PGView(schema="s", signature=f"v{i}", definition=f"SELECT id, a + {i} AS x FROM s.t") for i in range(views)
    ]
    entities += [
        PGFunction(
            schema="s",
            signature=f"f{i}(p int)",
            definition=f"RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT p + {i} $$",
        )
        for i in range(functions)
    ]
    register_entities(entities)
    metadata = sa.MetaData(schema="s")
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "target_metadata": metadata,
                "include_name": lambda name, kind, parents: name == "s" if kind == "schema" else kind != "table",
            },
        )
        started = time.perf_counter()
        compare_metadata(context, metadata)
        return time.perf_counter() - started


if __name__ == "__main__":
    main()
