"""How long a migration may wait, read from the environment and checked: GAMEDB_LOCK_TIMEOUT,
GAMEDB_MIGRATION_STATEMENT_TIMEOUT, GAMEDB_LOCK_WAIT and GAMEDB_LOCK_RETRIES (set but empty = unset)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import TypeVar

from gamedb.errors import InvalidSetting

Number = TypeVar("Number", int, float)

# PostgreSQL's duration syntax for timeouts: a number with an optional unit (none = milliseconds)
_DURATION = re.compile(r"\d+(\.\d+)?\s*(us|ms|s|min|h|d)?")


def _env_duration(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip() or default  # set but empty = unset, as for GAMEDB_URL
    if not _DURATION.fullmatch(value):
        raise InvalidSetting(f"{name}={value!r} is not a duration (e.g. 500ms, 2s, 30min)")
    return value


def _env_number(name: str, default: str, kind: Callable[[str], Number]) -> Number:
    value = os.environ.get(name, "").strip() or default
    number: Number | None
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number < 0:
        what = "a whole number" if kind is int else "a number (seconds)"
        raise InvalidSetting(f"{name}={value!r} is not {what} of 0 or more")
    return number


def lock_timeout() -> str:
    """How long a DDL statement may wait for a table lock (below the apps' statement_timeout)."""
    return _env_duration("GAMEDB_LOCK_TIMEOUT", "2s")


def statement_timeout() -> str:
    """The longest single statement of a migration."""
    return _env_duration("GAMEDB_MIGRATION_STATEMENT_TIMEOUT", "30min")


def lock_wait_seconds() -> float:
    """How long a run waits for another run of the same schema to finish."""
    return _env_number("GAMEDB_LOCK_WAIT", "600", float)


def lock_retries() -> int:
    """How many times a run that hit lock_timeout (55P03) is tried again."""
    return _env_number("GAMEDB_LOCK_RETRIES", "3", int)
