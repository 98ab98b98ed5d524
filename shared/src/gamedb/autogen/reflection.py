"""Reflection of a whole schema in a handful of queries, for comparing many tables at once.

Alembic's autogenerate reflects table by table, several catalog queries each (about 5 ms a table);
SQLAlchemy's dialect answers every one of those through its multi-table `get_multi_*` methods with
a one-name filter. Inside `schema_wide_reflection`, the first such call for a schema fetches every
table of it and later calls are served from that answer. Results are the dialect's own, so the
comparison is the same; the cache lives for one comparison only (the catalog may change after).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection

MULTI_METHODS = (
    "get_multi_columns",
    "get_multi_pk_constraint",
    "get_multi_foreign_keys",
    "get_multi_indexes",
    "get_multi_unique_constraints",
    "get_multi_check_constraints",
    "get_multi_table_comment",
)


@contextmanager
def schema_wide_reflection(connection: Connection) -> Iterator[None]:
    """While inside, a reflection of one table of a schema is answered from one query for all of them."""
    dialect = connection.dialect
    cache: dict[tuple[Any, ...], dict[Any, Any]] = {}
    for name in MULTI_METHODS:
        setattr(dialect, name, _prefetching(name, getattr(dialect, name), cache))
    try:
        yield
    finally:
        for name in MULTI_METHODS:
            vars(dialect).pop(name, None)  # the class's method again


def _prefetching(name: str, original: Any, cache: dict[tuple[Any, ...], dict[Any, Any]]) -> Any:
    def multi(connection: Connection, *, schema: str | None = None, filter_names: Any = None, **kw: Any) -> Any:
        options = {k: v for k, v in kw.items() if k != "info_cache"}
        try:
            key = (name, schema, tuple(sorted(options.items())))
            hash(key)
        except TypeError:
            key = None
        if filter_names is None or key is None:
            return original(connection, schema=schema, filter_names=filter_names, **kw)
        if key not in cache:
            cache[key] = dict(original(connection, schema=schema, filter_names=None, **kw))
        everything = cache[key]
        wanted = ((schema, table) for table in filter_names)
        return [(k, copy.deepcopy(everything[k])) for k in wanted if k in everything]

    return multi
