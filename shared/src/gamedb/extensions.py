"""Extensions a schema declares, installed once in the shared schema `extensions`.

Not in `public` (the revisions of a service touch only its own schema) and not in a service schema
(its `downgrade base` drops the schema with CASCADE and would take the extension from every other
service). Creating an extension needs rights a least-privilege migrator lacks; when it can't, the
run stops before any revision with one line naming the admin step.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gamedb.discovery import SchemaInfo
from gamedb.errors import GamedbError
from gamedb.names import EXTENSIONS_SCHEMA, quote_ident


class ExtensionMissing(GamedbError):
    """A declared extension is not installed (or not where gamedb expects it) and can't be installed here."""

    exit_code = 1


def extension_statements(extensions: Iterable[str]) -> list[str]:
    """SQL that installs `extensions` in schema `extensions`, usable by every role (idempotent)."""
    names = sorted(set(extensions))
    if not names:
        return []
    schema = quote_ident(EXTENSIONS_SCHEMA)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {schema}",
        f"GRANT USAGE ON SCHEMA {schema} TO PUBLIC",
        *(f"CREATE EXTENSION IF NOT EXISTS {quote_ident(name)} WITH SCHEMA {schema}" for name in names),
    ]


def see_extension_types(connection: Connection) -> None:
    """Put `extensions` last on the session's search_path, so reflection names `citext`, not `extensions.citext`.

    Service schemas stay off it: reflection must see their names qualified.
    """
    connection.execute(
        text(
            "SELECT set_config('search_path', current_setting('search_path') || ', ' || :schema, false)"
            " WHERE :schema <> ALL(string_to_array(replace(current_setting('search_path'), ' ', ''), ','))"
        ),
        {"schema": quote_ident(EXTENSIONS_SCHEMA)},
    )


def installed_extensions(connection: Connection, names: Iterable[str]) -> dict[str, str]:
    """Extension name -> the schema it is installed in, for those of `names` that are installed."""
    rows = connection.execute(
        text(
            "SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = ANY(:names)"
        ),
        {"names": list(names)},
    )
    return dict(rows.all())


def ensure_extensions(connection: Connection, schema: SchemaInfo) -> None:
    """Install the schema's missing extensions, or raise ExtensionMissing; leaves no transaction open."""
    if not schema.extensions:
        return
    found = installed_extensions(connection, schema.extensions)
    connection.commit()
    for name, where in sorted(found.items()):
        if where != EXTENSIONS_SCHEMA:
            raise ExtensionMissing(
                f"schema {schema.name!r} needs extension {name!r}, installed in schema {where!r}; gamedb "
                f"keeps extensions in schema {EXTENSIONS_SCHEMA!r}: an admin runs "
                f"ALTER EXTENSION {quote_ident(name)} SET SCHEMA {quote_ident(EXTENSIONS_SCHEMA)}"
            )
    missing = [name for name in schema.extensions if name not in found]
    if not missing:
        return
    try:
        for statement in extension_statements(missing):
            connection.execute(text(statement))
        connection.commit()
    except DBAPIError as exc:
        connection.rollback()
        if set(installed_extensions(connection, missing)) == set(missing):  # a concurrent run made them
            connection.commit()
            return
        connection.commit()
        sqlstate = getattr(exc.orig, "sqlstate", None)
        reason = "this login may not create them" if sqlstate == "42501" else str(exc.orig).splitlines()[0]
        raise ExtensionMissing(
            f"schema {schema.name!r} needs extension(s) {', '.join(missing)}, not installed: {reason}; "
            "an admin runs `gamedb roles apply` (it installs every declared extension)"
        ) from None
