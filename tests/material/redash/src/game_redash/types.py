# Copyright (c) 2013-2020, Arik Fraimovich. All rights reserved.
# BSD 2-Clause License (getredash/redash, LICENSE). The column types below are redash/models/types.py
# and the sqlalchemy_utils types Redash's models use (sqlalchemy-utils, BSD 3-Clause, Konsta Vesterinen),
# reduced to what decides the database column: impl, constructor, cache_ok. App imports stripped.
# ruff: noqa: B026 - sqlalchemy_utils' own spelling, kept as written
"""Column types as Redash declares them: TypeDecorators over TEXT, VARCHAR and TSVECTOR, with and without
their own __init__."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.types import TypeDecorator


class JSONText(TypeDecorator):
    """Utilized for cases when JSON size is bigger than JSONB (255MB) or JSON (10MB) limit."""

    impl = sa.Text

    def process_bind_param(self, value, dialect):
        if value is None:
            return value
        return json.dumps(value)

    def process_result_value(self, value, dialect):
        if not value:
            return value
        return json.loads(value)


class EmailType(TypeDecorator):
    """sqlalchemy_utils.EmailType: lower-cased e-mail addresses, its own __init__ with a length."""

    impl = sa.Unicode
    cache_ok = True

    def __init__(self, length=255, *args, **kwargs):
        super().__init__(length=length, *args, **kwargs)

    def process_bind_param(self, value, dialect):
        if value is not None:
            return value.lower()
        return value


class StringEncryptedType(TypeDecorator):
    """sqlalchemy_utils.StringEncryptedType: its constructor takes the underlying type, a key, an engine."""

    impl = sa.String
    cache_ok = True

    def __init__(self, type_in=None, key=None, engine=None, padding=None, **kwargs):
        super().__init__(**kwargs)
        self.underlying_type = type_in() if isinstance(type_in, type) else type_in
        self._key = key
        self.engine = engine


class EncryptedConfiguration(StringEncryptedType):
    pass


class TSVectorType(TypeDecorator):
    """sqlalchemy_utils.TSVectorType: TSVECTOR with the searched columns as constructor arguments."""

    impl = TSVECTOR
    cache_ok = True

    def __init__(self, *args, **kwargs):
        self.columns = args
        self.options = kwargs
        super().__init__()
