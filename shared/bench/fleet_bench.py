"""Benchmark: upgrading K schemas x R revisions, the seed's way against gamedb and against psql.

Run with `nox -s bench` (or `python shared/bench/fleet_bench.py --schemas 20 --revisions 10`).
For each size it builds a synthetic monorepo in a temp dir with gamedb's own scaffolding, then
measures, each on a fresh database of one server:
  naive_s       one `alembic -x schema=S upgrade S@head` process per schema (the seed's workflow)
  upgrade_all_s `gamedb upgrade-all`
  floor_s       `psql -f` of `gamedb upgrade-all --sql` (the same SQL and transactions, no Python)
  noop_s        `gamedb upgrade-all` again, everything at head
  scoped_cmd_s  `gamedb -x schema=<one> heads` (a scoped command's start-up)
and, at head, the read side (every service has a model table per revision):
  check_all_s   `gamedb check-all` (models against the database, every schema)
  status_s      `gamedb status` (versions, pending, drift)
  per_table_s   the same comparison done Alembic's way, table by table (compare_metadata per schema
                without gamedb's schema-wide reflection), in one process: the naive read
  help_s        `gamedb --help`; import_sqla_s: `python -c "import sqlalchemy"`, its floor
All but the naive way run --repeat times and the best time counts. upgrade-all uses its default
--jobs (one per core, at most four).
The installed services (auth, inventory) are part of every run too: discovery sees them.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url

from gamedb.discovery import discover_schemas
from gamedb.scaffold.files import register_in_place, write_revision, write_service
from gamedb.server import embedded
from gamedb.testing import ThrowawayDatabase

REPO = Path(__file__).resolve().parents[2]


def build_monorepo(root: Path, schemas: int, revisions: int) -> list[Path]:
    """Synthetic services s000.. with `revisions` revisions each; returns their src dirs."""
    shutil.copytree(REPO / "migrations", root / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
    src_dirs = []
    version_dirs = [info.versions_dir for info in discover_schemas().values()]
    for k in range(schemas):
        layout = write_service(root / "services", f"s{k:03d}")
        models = [layout.models_file.read_text(), "from sqlalchemy import BigInteger, Column, Table, Text\n"]
        models += [
            f"Table('t{r:03d}', metadata, Column('id', BigInteger, primary_key=True), Column('v', Text))\n"
            for r in range(1, revisions)
        ]
        layout.models_file.write_text("".join(models))
        down = None
        for r in range(revisions):
            rev = f"{layout.name}r{r:03d}"
            table = f"{layout.name}.t{r:03d}"
            up = [] if down is None else [f"CREATE TABLE {table} (id bigint PRIMARY KEY, v text)"]
            write_revision(layout, rev, down, f"step {r}", up, [] if down is None else [f"DROP TABLE {table}"])
            down = rev
        src_dirs.append(register_in_place(layout))
        version_dirs.append(layout.versions_dir)
    ini = (REPO / "alembic.ini").read_text()
    head, _, tail = ini.partition("version_locations =")
    rest = tail.split("\n# No sqlalchemy.url", 1)[1]
    listed = "".join(f"\n    {d}" for d in version_dirs)
    (root / "alembic.ini").write_text(f"{head}version_locations ={listed}\n# No sqlalchemy.url{rest}")
    compileall.compile_dir(str(root / "services"), quiet=1)  # every way starts with warm .pyc files
    return src_dirs


@contextmanager
def fresh_database(admin_uri: str) -> Iterator[tuple[str, str]]:
    """A new database: (SQLAlchemy URL, libpq URI); dropped afterwards."""
    database = ThrowawayDatabase(admin_uri)
    try:
        yield database.url, database.libpq
    finally:
        database.drop()


def timed(commands: list[list[str]], env: dict[str, str], cwd: Path, stdin: str | None = None) -> float:
    start = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, input=stdin)
        if done.returncode != 0:
            sys.exit(f"bench: {' '.join(command[:4])}... failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def measure(admin_uri: str, psql: str, schemas: int, revisions: int, repeat: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="gamedb-bench-") as tmp:
        root = Path(tmp)
        src_dirs = build_monorepo(root, schemas, revisions)
        env = {k: v for k, v in os.environ.items() if k != "GAMEDB_URL"}
        env["PYTHONPATH"] = os.pathsep.join(map(str, src_dirs))
        names = [*discover_schemas(), *(f"s{k:03d}" for k in range(schemas))]
        gamedb = [sys.executable, "-m", "gamedb"]
        result: dict[str, float | int] = {"schemas": schemas, "revisions": revisions}

        with fresh_database(admin_uri) as (url, _):
            naive = [[sys.executable, "-m", "alembic", "-x", f"schema={s}", "upgrade", f"{s}@head"] for s in names]
            result["naive_s"] = timed(naive, {**env, "GAMEDB_URL": url}, root)
        plan = subprocess.run([*gamedb, "upgrade-all", "--sql"], env=env, cwd=root, check=True, capture_output=True)
        # the rest is cheap enough to repeat: the best of `repeat` runs each, interleaved, so that a
        # burst of disk activity on a shared machine does not decide a ratio alone
        for _ in range(repeat):
            with fresh_database(admin_uri) as (url, _):
                at = {**env, "GAMEDB_URL": url}
                best(result, "upgrade_all_s", timed([[*gamedb, "upgrade-all"]], at, root))
                best(result, "noop_s", timed([[*gamedb, "upgrade-all"]], at, root))
                best(result, "check_all_s", timed([[*gamedb, "check-all"]], at, root))
                best(result, "status_s", timed([[*gamedb, "status"]], at, root))
                best(result, "per_table_s", timed([[sys.executable, "-c", PER_TABLE, url]], at, root))
            best(result, "help_s", timed([[*gamedb, "--help"]], env, root))
            best(result, "import_sqla_s", timed([[sys.executable, "-c", "import sqlalchemy"]], env, root))
            best(result, "scoped_cmd_s", timed([[*gamedb, "-x", f"schema={names[-1]}", "heads"]], env, root))
            with fresh_database(admin_uri) as (_, libpq):
                # one transaction per schema, as upgrade-all: a single transaction for the whole fleet
                # runs out of lock slots (max_locks_per_transaction) at 100 x 50
                psql_cmd = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", libpq]
                best(result, "floor_s", timed([psql_cmd], env, root, stdin=plan.stdout.decode()))
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}


# Alembic's own comparison of every schema, table by table: what check-all cost before schema-wide reflection.
PER_TABLE = """
import sys
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from gamedb.autogen import autogenerate_options
from gamedb.discovery import discover_schemas
engine = create_engine(sys.argv[1])
with engine.connect() as conn:
    for info in discover_schemas().values():
        context = MigrationContext.configure(conn, opts=autogenerate_options(info))
        assert compare_metadata(context, info.metadata) == [], info.name
"""


def best(result: dict[str, float | int], key: str, seconds: float) -> None:
    result[key] = min(seconds, result.get(key, seconds))


def psql_binary() -> str:
    found = embedded.psql_binary()
    if not found:
        sys.exit("bench: no psql found (install gamedb[embedded] or a PostgreSQL client)")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemas", type=int, nargs="*", default=[30, 100])
    parser.add_argument("--revisions", type=int, nargs="*", default=[20, 50])
    parser.add_argument("--json", action="store_true", help="one JSON object per size")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each cheap measurement; the best counts")
    parser.add_argument(
        "--server-dir", type=Path, help="where the embedded server keeps its data (default: a temp dir)"
    )
    args = parser.parse_args()
    if len(args.schemas) != len(args.revisions):
        sys.exit("bench: give as many --revisions as --schemas (sizes are pairs)")
    admin = os.environ.get("GAMEDB_TEST_URL")
    if admin:
        admin_uri = make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False)
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="gamedb-bench-pg-", dir=args.server_dir))
        admin_uri = embedded.start_server(data_dir, keep_running=False)
    psql = psql_binary()
    rows = []
    for schemas, revisions in zip(args.schemas, args.revisions, strict=True):
        row = measure(admin_uri, psql, schemas, revisions, args.repeat)
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        print_table(rows)


def print_table(rows: list[dict[str, float | int]]) -> None:
    header = "size      naive    upgrade-all  floor(psql)  no-op   scoped   vs naive  vs floor"
    print(header)
    for r in rows:
        print(
            f"{r['schemas']}x{r['revisions']:<6} {r['naive_s']:>6.2f}s  {r['upgrade_all_s']:>10.2f}s"
            f"  {r['floor_s']:>10.2f}s  {r['noop_s']:>5.2f}s  {r['scoped_cmd_s']:>5.2f}s"
            f"  {r['naive_s'] / r['upgrade_all_s']:>7.1f}x  {r['upgrade_all_s'] / r['floor_s']:>7.1f}x"
        )
    print()
    print("size      check-all  status   per-table  help    import sqla  check-all/no-op  status/no-op  help/import")
    for r in rows:
        print(
            f"{r['schemas']}x{r['revisions']:<6} {r['check_all_s']:>8.2f}s  {r['status_s']:>6.2f}s"
            f"  {r['per_table_s']:>8.2f}s  {r['help_s']:>5.2f}s  {r['import_sqla_s']:>10.2f}s"
            f"  {r['check_all_s'] / r['noop_s']:>14.1f}x  {r['status_s'] / r['noop_s']:>11.1f}x"
            f"  {r['help_s'] / r['import_sqla_s']:>10.1f}x"
        )


if __name__ == "__main__":
    main()
