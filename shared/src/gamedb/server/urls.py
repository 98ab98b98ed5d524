"""Which server a URL names: GAMEDB_URL or the embedded server, a URL read the way a connection reads
it (or one line saying why not), and the same URL with its secrets masked for printing."""

from __future__ import annotations

import os
import re
from urllib.parse import quote, quote_plus, unquote

import psycopg
from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError

from gamedb.errors import InvalidDatabaseUrl
from gamedb.project import Project
from gamedb.server import embedded

URL_ENV = "GAMEDB_URL"
DRIVER = "postgresql+psycopg"

MASK = "***"
# libpq parameters that carry a secret, in a URL's query or a keyword/value string
SECRET_KEYS = frozenset({"password", "sslpassword"})
# Literal secrets shorter than this are not searched for in messages: they would blank out ordinary
# words, and such a password is no secret anyway. Structural masking (mask_url) has no such limit.
MIN_REDACTED_LENGTH = 4
_MASK_PLACEHOLDER = "GAMEDBMASKEDSECRET"
# For text that does not parse as a URL: user-info up to the last @ (of the string when it is one
# connection string, of the word in a message), and key=value secrets
_USERINFO = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^:/?#@\s]*):.*@")
_USERINFO_WORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^:/?#@\s]*):\S*@")
_KEYWORD = re.compile(r"(?i)\b(?P<key>(?:ssl)?password)\s*=\s*(?:\*\*\*|'(?:[^'\\]|\\.)*'?|[^\s&]*)")


def resolve_url(project: Project) -> URL:
    """GAMEDB_URL if set (any postgresql:// spelling, driver forced to psycopg 3), else the embedded server."""
    raw = os.environ.get(URL_ENV, "").strip()
    if not raw:
        # the embedded server trusts local connections: drop its empty password altogether
        return make_url(embedded.embedded_libpq_uri(project.data_dir))._replace(drivername=DRIVER, password=None)
    return parse_url(raw, source=URL_ENV)


def parse_url(raw: str, *, source: str = URL_ENV) -> URL:
    """A PostgreSQL URL read the way a connection will read it, or one line saying why not.

    Refused: anything but PostgreSQL, an unreadable host or port, no database name (libpq would
    silently pick the user's name, `postgres` for an admin). No message repeats the raw text.
    """
    expected = f"expected {DRIVER}://user@host:5432/game"
    try:
        url = _keyword_url(raw, source) if _KEYWORD_FORM.match(raw) else make_url(raw)
    except ArgumentError:
        raise InvalidDatabaseUrl(f"{source} is not a database URL ({expected})") from None
    except ValueError:  # a port like :abc, or an IPv6 host without its closing ]
        raise InvalidDatabaseUrl(
            f"{source} has an unreadable host or port: the port must be a number, an IPv6 host goes in [brackets] "
            f"({expected})"
        ) from None
    if url.get_backend_name() != "postgresql":
        raise InvalidDatabaseUrl(f"{source} must point to PostgreSQL, not {url.get_backend_name()!r}")
    if url.port is not None and not 0 < url.port < 65536:
        raise InvalidDatabaseUrl(f"{source} has port {url.port}: a port is a number from 1 to 65535")
    if not url.database:
        raise InvalidDatabaseUrl(f"{source} names no database: add it after the host ({expected})")
    url = url.set(drivername=DRIVER)
    try:
        url.get_dialect()().create_connect_args(url)  # multi-host and query syntax, as create_engine reads it
    except (ArgumentError, ValueError, TypeError) as exc:
        raise InvalidDatabaseUrl(f"{source} cannot be used: {redact(' '.join(str(exc).split()))}") from None
    return url


# libpq's keyword/value form: `host=db dbname=game user=deployer` (no scheme)
_KEYWORD_FORM = re.compile(r"^\s*[A-Za-z_]+\s*=(?!.*://)")


def _keyword_url(raw: str, source: str) -> URL:
    """libpq's `key=value ...` connection string as the URL it means (every other key kept as a query
    parameter, which psycopg hands back to libpq). The refusal never repeats the string."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = {key: str(value) for key, value in conninfo_to_dict(raw).items()}
    except psycopg.Error:
        raise InvalidDatabaseUrl(
            f"{source} is neither a URL nor a readable libpq key=value string (e.g. host=db dbname=game user=me)"
        ) from None
    host, port = params.pop("host", None), params.pop("port", None)
    if host is not None and (host.startswith("/") or "," in host):  # a socket directory or several hosts
        params["host"], host = host, None
    if port is not None and (host is None or not port.isdigit()):
        params["port"], port = port, None
    return URL.create(
        DRIVER,
        username=params.pop("user", None),
        password=params.pop("password", None),
        host=host,
        port=int(port) if port is not None else None,
        database=params.pop("dbname", None),
        query=params,
    )


def mask_url(url: URL | str) -> str:
    """Any spelling of a connection string with every secret replaced by ***: the way gamedb prints one.

    Masks the user-info password and `password=` / `sslpassword=` query parameters (percent-encoded
    or not); a string that is no URL (libpq's `host=... password=...` form, a broken URL) is scrubbed
    by pattern, never printed as given.
    """
    if isinstance(url, str):
        raw = url
        try:
            url = make_url(raw)
        except (ArgumentError, ValueError):
            return _scrub(raw, _USERINFO)
    query = {key: (_MASK_PLACEHOLDER if key.lower() in SECRET_KEYS else value) for key, value in url.query.items()}
    return url.set(query=query).render_as_string(hide_password=True).replace(_MASK_PLACEHOLDER, MASK)


def _scrub(text: str, userinfo: re.Pattern[str]) -> str:
    text = userinfo.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _KEYWORD.sub(lambda m: f"{m['key']}={MASK}", text)


def url_secrets(raw: str) -> set[str]:
    """The secrets a connection string carries, as given and decoded (to find them in any text)."""
    found: set[str] = set()
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        found.update(m.group(0).split("=", 1)[1].strip().strip("'") for m in _KEYWORD.finditer(raw))
        userinfo = _USERINFO.search(raw)
        if userinfo:
            found.add(userinfo.group(0)[len(userinfo["head"]) + 1 : -1])
    else:
        if url.password:
            found.add(str(url.password))
        for key, value in url.query.items():
            if key.lower() in SECRET_KEYS:
                found.update([value] if isinstance(value, str) else value)
    spellings = set()
    for secret in found:
        spellings |= {secret, unquote(secret), quote(secret, safe=""), quote_plus(secret), quote(secret)}
        spellings.add(secret.replace(" ", "+"))
    return {s for s in spellings if len(s) >= MIN_REDACTED_LENGTH}


def redact(text: str) -> str:
    """`text` with every secret of the configured URLs (GAMEDB_URL*) and any URL-shaped secret masked."""
    secrets: set[str] = set()
    for name, value in os.environ.items():
        if name.startswith(URL_ENV) and value:
            secrets |= url_secrets(value)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _scrub(text, _USERINFO_WORD)


def libpq_url(url: URL) -> str:
    """The URL as psql understands it, without its secrets (the password and any `password=` /
    `sslpassword=` parameter are left out, so the line can be pasted: psql then asks for the
    password, or reads PGPASSWORD or ~/.pgpass)."""
    plain = url._replace(drivername="postgresql", password=None)  # set(password=None) keeps it
    base = plain.set(query={}).render_as_string(hide_password=False)
    # query values stay readable (a Unix-socket directory as host=/path)
    params = [
        f"{key}={quote(item, safe='/,:')}"
        for key, value in plain.query.items()
        if key.lower() not in SECRET_KEYS
        for item in ([value] if isinstance(value, str) else value)
    ]
    return f"{base}?{'&'.join(params)}" if params else base


def has_secret(url: URL) -> bool:
    """Whether the URL carries a password (in its user-info or a query parameter)."""
    return bool(url.password) or any(key.lower() in SECRET_KEYS for key in url.query)
