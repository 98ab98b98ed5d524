"""The naming rules for schemas, kept in one place.

A schema name must survive as a role-name prefix: `<s>_owner` and `<s>_rw` must stay distinct
after PostgreSQL's 63-byte truncation, hence the 40-character cap.
"""

from __future__ import annotations

import re

from psycopg import sql
from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS

from gamedb.errors import InvalidSchemaName

SCHEMA_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
RESERVED_SCHEMA_NAMES = frozenset({"public", "information_schema", "alembic", "migrator", "extensions"})
VERSION_TABLE_SCHEMA = "alembic"
# Where declared extensions live: outside every service schema (a service's `downgrade base` drops
# its schema with CASCADE and must never take a shared extension with it), usable by every role.
EXTENSIONS_SCHEMA = "extensions"
EXTENSION_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,62}")


def validate_schema_name(name: str, *, kind: str = "schema name") -> str:
    """Return `name` if it may be a service schema (or, with `kind`, a login), else InvalidSchemaName saying why."""
    if not isinstance(name, str) or not SCHEMA_NAME_PATTERN.fullmatch(name):
        raise InvalidSchemaName(
            f"invalid {kind} {name!r}: must match ^[a-z][a-z0-9_]{{0,39}}$ "
            "(lowercase letter first, then lowercase letters, digits or _; 40 characters at most)"
        )
    if name in RESERVED_SCHEMA_NAMES or name.startswith("pg_"):
        raise InvalidSchemaName(f"invalid {kind} {name!r}: reserved by PostgreSQL or gamedb")
    if name in RESERVED_WORDS:
        raise InvalidSchemaName(f"invalid {kind} {name!r}: an SQL reserved word")
    return name


def validate_extension_name(name: str) -> str:
    """Return `name` if it can name a PostgreSQL extension (e.g. citext, pg_trgm, uuid-ossp)."""
    if not isinstance(name, str) or not EXTENSION_NAME_PATTERN.fullmatch(name):
        raise InvalidSchemaName(f"invalid extension name {name!r}: must match ^[a-z][a-z0-9_-]{{0,62}}$")
    return name


def search_path_for(schema: str) -> str:
    """The search_path a schema's revisions run with: its own schema, the extensions, pg_catalog."""
    return ", ".join([quote_ident(schema), quote_ident(EXTENSIONS_SCHEMA), "pg_catalog"])


def quote_ident(name: str) -> str:
    """An identifier, always quoted, as text (psycopg.sql.Identifier: the one quoting gamedb uses)."""
    return sql.Identifier(name).as_string(None)


def quote_literal(value: str) -> str:
    """A string literal as text, for SQL that is written out rather than sent with parameters."""
    return sql.Literal(value).as_string(None)


def create_schema_sql(schema: str) -> str:
    """The seed's init upgrade for a schema."""
    return "CREATE SCHEMA IF NOT EXISTS " + quote_ident(schema)


def drop_schema_sql(schema: str) -> str:
    """The seed's init downgrade for a schema."""
    return "DROP SCHEMA IF EXISTS " + quote_ident(schema) + " CASCADE"


def validate_login_name(name: str, taken: set[str]) -> str:
    """A login name: the schema-name rules, and none of the model's own roles (`taken`)."""
    validate_schema_name(name, kind="login name")
    if name in taken:
        raise InvalidSchemaName(f"invalid login name {name!r}: it is one of gamedb's own roles")
    return name
