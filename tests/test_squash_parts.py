"""The pure parts of `gamedb squash`: splitting pg_dump's SQL, escaping it for op.execute, finding data steps."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from gamedb.squash.data_steps import find_data_steps
from gamedb.squash.dump import dump_statements
from gamedb.squash.statements import escape_for_text, split_statements

pytestmark = pytest.mark.unit


def test_semicolons_inside_quotes_dollar_quotes_and_comments_do_not_split():
    script = (
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $body$ SELECT 'a;b' $body$;\n"
        "-- a comment; with a semicolon\n"
        "INSERT INTO t VALUES ('it''s; fine', E'back\\\\'';slash', \"odd;name\");\n"
        "/* block; /* nested; */ */ SELECT 1;\n"
        "-- only a comment at the end\n"
    )

    assert split_statements(script) == [
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $body$ SELECT 'a;b' $body$",
        "-- a comment; with a semicolon\nINSERT INTO t VALUES ('it''s; fine', E'back\\\\'';slash', \"odd;name\")",
        "/* block; /* nested; */ */ SELECT 1",
    ]


@pytest.mark.parametrize("statement", ["COMMENT ON TABLE t IS ' :here'", "SELECT ':a', 1::int, x[1:2], ' :b::c'"])
def test_escaped_statements_reach_the_server_as_written(statement):
    clause = text(escape_for_text(statement))

    assert clause.compile(dialect=postgresql.dialect()).params == {}
    assert str(clause.compile(dialect=postgresql.dialect())).replace("%%", "%") == statement


DUMP = """--
-- PostgreSQL database dump
--

\\restrict abc

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: s; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA s;


SET default_tablespace = '';

--
-- Name: t; Type: TABLE; Schema: s; Owner: -
--

CREATE TABLE s.t (
    id integer NOT NULL
);


--
-- Data for Name: t; Type: TABLE DATA; Schema: s; Owner: -
--

INSERT INTO s.t (id) VALUES (1);


--
-- Name: TABLE t; Type: ACL; Schema: s; Owner: -
--

GRANT SELECT ON TABLE s.t TO s_rw;


--
-- PostgreSQL database dump complete
--

\\unrestrict abc

"""


def test_a_dump_becomes_the_schemas_statements_with_grants_only_under_the_role_model():
    statements = dump_statements(DUMP, "s_owner")

    assert statements[:3] == [
        "SET LOCAL check_function_bodies = false",
        "CREATE TABLE s.t (\n    id integer NOT NULL\n)",
        "INSERT INTO s.t (id) VALUES (1)",
    ]
    (grant,) = statements[3:]
    assert "rolname = 's_owner'" in grant and "EXECUTE 'GRANT SELECT ON TABLE s.t TO s_rw'" in grant
    assert "WHEN undefined_object THEN NULL" in grant


def test_data_steps_are_found_in_upgrade_only_and_told_apart(tmp_path):
    path = tmp_path / "r2_step.py"
    path.write_text(
        "from alembic import op\nimport sqlalchemy as sa\n\n\n"
        "def upgrade():\n"
        "    op.execute('CREATE TABLE s.t (id int)')\n"
        "    op.execute('-- seed\\n insert into s.t VALUES (1)')\n"
        "    op.execute(sa.text('UPDATE s.t SET id = 2'))\n"
        "    op.bulk_insert(table, [{'id': 3}])\n"
        "    op.get_bind().execute(sa.text('SELECT 1'))\n"
        "    op.execute(f'DELETE FROM {name}')\n\n\n"
        "def downgrade():\n"
        "    op.execute('DELETE FROM s.t')\n"
    )

    steps = find_data_steps("r2", path)

    assert [(s.line, s.what, s.plain) for s in steps] == [
        (7, "op.execute: -- seed insert into s.t VALUES (1)", True),
        (8, "op.execute: UPDATE s.t SET id = 2", True),
        (9, "op.bulk_insert", False),
        (10, "op.get_bind() code", False),
        (11, "op.execute of an expression", False),
    ]
    assert str(steps[2]) == "r2_step.py:9 (revision r2): op.bulk_insert"
