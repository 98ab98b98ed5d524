"""What a service declares next to its tables: views, materialized views, functions and procedures,
triggers, row-level-security policies and a table's RLS flags, all in the service's own schema.

    from gamedb.objects import Function, Policy, RowSecurity, Trigger, View, declare_objects

    declare_objects(
        metadata,
        Function("set_updated_at()", "RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ... END $$"),
        Trigger("players_updated_at", "players", "BEFORE UPDATE", "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"),
        ...
    )

Definitions are SQL as the team writes it; names are unqualified (they are created in the schema,
with the schema first on the search_path). Objects are created in the order declared and dropped in
the reverse order, so declare what another object uses first. `check` compares each one as
PostgreSQL prints it (gamedb.autogen.objects), and reports every object of these kinds in the schema
that nothing declares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import MetaData

from gamedb.errors import DiscoveryError
from gamedb.names import quote_ident

INFO_KEY = "gamedb.objects"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_SIGNATURE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_$]{0,62})\s*\((.*)\)\s*", re.DOTALL)
ROLE_KEYWORDS = frozenset({"public", "current_user", "session_user", "current_role"})


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise DiscoveryError(f"{what} {value!r} is not a plain SQL name (letters, digits, _ and $; 63 at most)")
    return value


def _qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


@dataclass(frozen=True)
class DeclaredObject:
    """Base of every declared object. `key` identifies it in the schema; `early` objects (functions)
    are created before the tables of a revision, the others after them."""

    @property
    def key(self) -> tuple[str, str]:
        raise NotImplementedError

    early = False

    def create_statements(self, schema: str, *, with_data: bool = True) -> list[str]:
        raise NotImplementedError


@dataclass(frozen=True)
class View(DeclaredObject):
    """CREATE VIEW name [WITH (options)] AS definition (the SELECT); options such as "security_invoker=true"."""

    name: str
    definition: str
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _name(self.name, "view")

    @property
    def key(self) -> tuple[str, str]:
        return ("view", self.name)

    def create_statements(self, schema: str, *, with_data: bool = True) -> list[str]:
        options = f" WITH ({', '.join(self.options)})" if self.options else ""
        return [f"CREATE VIEW {_qualified(schema, self.name)}{options} AS {self.definition.strip().rstrip(';')}"]


@dataclass(frozen=True)
class MaterializedView(DeclaredObject):
    """CREATE MATERIALIZED VIEW name AS definition; `unique_key` columns get a unique index
    (`<name>_key`), which REFRESH MATERIALIZED VIEW CONCURRENTLY needs."""

    name: str
    definition: str
    unique_key: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _name(self.name, "materialized view")
        for column in self.unique_key:
            _name(column, "unique_key column")

    @property
    def key(self) -> tuple[str, str]:
        return ("materialized view", self.name)

    def create_statements(self, schema: str, *, with_data: bool = True) -> list[str]:
        data = "WITH DATA" if with_data else "WITH NO DATA"
        statements = [
            f"CREATE MATERIALIZED VIEW {_qualified(schema, self.name)} AS {self.definition.strip().rstrip(';')} {data}"
        ]
        if self.unique_key:
            columns = ", ".join(quote_ident(c) for c in self.unique_key)
            statements.append(
                f"CREATE UNIQUE INDEX {quote_ident(self.name + '_key')} ON {_qualified(schema, self.name)} ({columns})"
            )
        return statements


@dataclass(frozen=True)
class Function(DeclaredObject):
    """CREATE OR REPLACE FUNCTION signature definition, e.g. Function("touch(p bigint)", "RETURNS void
    LANGUAGE sql AS $$ ... $$"). Created before the revision's tables (an index may use it): a
    LANGUAGE sql body that reads a table of the same revision needs plpgsql or a revision of its own."""

    signature: str
    definition: str
    early = True
    kind = "function"

    def __post_init__(self) -> None:
        match = _SIGNATURE.fullmatch(self.signature) if isinstance(self.signature, str) else None
        if match is None:
            raise DiscoveryError(f"{self.kind} signature {self.signature!r} is not NAME(ARGUMENTS)")

    @property
    def name(self) -> str:
        match = _SIGNATURE.fullmatch(self.signature)
        assert match is not None
        return match.group(1)

    @property
    def key(self) -> tuple[str, str]:
        # the real identity (argument types as PostgreSQL prints them) is only known once created
        return (self.kind, " ".join(self.signature.split()))

    def create_statements(self, schema: str, *, with_data: bool = True) -> list[str]:
        match = _SIGNATURE.fullmatch(self.signature)
        assert match is not None
        return [
            f"CREATE OR REPLACE {self.kind.upper()} {_qualified(schema, match.group(1))}({match.group(2)}) "
            f"{self.definition.strip().rstrip(';')}"
        ]


@dataclass(frozen=True)
class Procedure(Function):
    """CREATE OR REPLACE PROCEDURE signature definition."""

    kind = "procedure"


@dataclass(frozen=True)
class Trigger(DeclaredObject):
    """CREATE TRIGGER name <timing> ON table <action>: Trigger("t", "players", "BEFORE UPDATE",
    "FOR EACH ROW EXECUTE FUNCTION set_updated_at()")."""

    name: str
    table: str
    timing: str
    action: str

    def __post_init__(self) -> None:
        _name(self.name, "trigger")
        _name(self.table, "trigger table")

    @property
    def key(self) -> tuple[str, str]:
        return ("trigger", f"{self.name} on {self.table}")

    def create_statements(self, schema: str, *, with_data: bool = True) -> list[str]:
        return [
            f"CREATE TRIGGER {quote_ident(self.name)} {self.timing.strip()} ON {_qualified(schema, self.table)} "
            f"{self.action.strip().rstrip(';')}"
        ]


@dataclass(frozen=True)
class Policy(DeclaredObject):
    """CREATE POLICY name ON table: `using` / `with_check` are SQL expressions; `command` ALL, SELECT,
    INSERT, UPDATE or DELETE; `roles` role names (default PUBLIC); `permissive` or restrictive."""

    name: str
    table: str
    using: str | None = None
    with_check: str | None = None
    command: str = "ALL"
    roles: tuple[str, ...] = ("public",)
    permissive: bool = True

    def __post_init__(self) -> None:
        _name(self.name, "policy")
        _name(self.table, "policy table")
        if self.command.upper() not in {"ALL", "SELECT", "INSERT", "UPDATE", "DELETE"}:
            raise DiscoveryError(
                f"policy {self.name!r}: command {self.command!r} is not ALL/SELECT/INSERT/UPDATE/DELETE"
            )
        if isinstance(self.roles, str) or not self.roles:
            raise DiscoveryError(f"policy {self.name!r}: roles must be a non-empty tuple of role names")
        for role in self.roles:
            _name(role, "policy role")

    @property
    def key(self) -> tuple[str, str]:
        return ("policy", f"{self.name} on {self.table}")

    def create_statements(self, schema: str, *, with_data: bool = True) -> list[str]:
        roles = ", ".join(r.upper() if r.lower() in ROLE_KEYWORDS else quote_ident(r) for r in self.roles)
        text = (
            f"CREATE POLICY {quote_ident(self.name)} ON {_qualified(schema, self.table)} "
            f"AS {'PERMISSIVE' if self.permissive else 'RESTRICTIVE'} FOR {self.command.upper()} TO {roles}"
        )
        if self.using is not None:
            text += f" USING ({self.using})"
        if self.with_check is not None:
            text += f" WITH CHECK ({self.with_check})"
        return [text]


@dataclass(frozen=True)
class RowSecurity(DeclaredObject):
    """A table's row-level security: ENABLE (and with `forced`, FORCE: the owner is bound by policies too)."""

    table: str
    enabled: bool = True
    forced: bool = False

    def __post_init__(self) -> None:
        _name(self.table, "row security table")

    @property
    def key(self) -> tuple[str, str]:
        return ("row security", self.table)

    def create_statements(self, schema: str, *, with_data: bool = True) -> list[str]:
        return row_security_statements(schema, self.table, self.enabled, self.forced)


def row_security_statements(schema: str, table: str, enabled: bool, forced: bool) -> list[str]:
    """The two ALTER TABLEs that set a table's RLS flags."""
    target = _qualified(schema, table)
    return [
        f"ALTER TABLE {target} {'ENABLE' if enabled else 'DISABLE'} ROW LEVEL SECURITY",
        f"ALTER TABLE {target} {'FORCE' if forced else 'NO FORCE'} ROW LEVEL SECURITY",
    ]


def declare_objects(metadata: MetaData, *objects: DeclaredObject) -> None:
    """Attach `objects` to the service's MetaData (created in this order; a name declared twice is refused)."""
    current = list(metadata.info.get(INFO_KEY, ()))
    seen = {o.key for o in current}
    for obj in objects:
        if not isinstance(obj, DeclaredObject):
            raise DiscoveryError(f"declare_objects takes View, Function, Trigger, Policy...; not {obj!r}")
        if obj.key in seen:
            raise DiscoveryError(f"{obj.key[0]} {obj.key[1]} is declared twice")
        seen.add(obj.key)
        current.append(obj)
    metadata.info[INFO_KEY] = tuple(current)


def declared_objects(metadata: MetaData | None) -> tuple[DeclaredObject, ...]:
    """What `declare_objects` attached to `metadata`, in order."""
    if metadata is None:
        return ()
    return tuple(metadata.info.get(INFO_KEY, ()))
