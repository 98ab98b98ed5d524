"""Entry points in `gamedb.schemas` -> one validated SchemaInfo per schema.

Invariant: every SchemaInfo returned names a valid, unique schema whose versions directory exists
and whose depends_on names other discovered schemas. Nothing else derives a schema's version table
or role names: ask the SchemaInfo.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from sqlalchemy import MetaData

from gamedb.discovery.declaration import SchemaDeclaration
from gamedb.discovery.enums import stamp_enum_schemas
from gamedb.errors import DiscoveryError, InvalidSchemaName, UnknownSchema, user_code_error
from gamedb.names import VERSION_TABLE_SCHEMA, validate_extension_name, validate_schema_name

ENTRY_POINT_GROUP = "gamedb.schemas"
DURATION = re.compile(r"[0-9]{1,9}(us|ms|s|min|h|d)?")


@dataclass(frozen=True)
class SchemaInfo:
    """One service schema, as discovered and validated: its declaration, and what gamedb derives from it."""

    name: str
    distribution: str
    declaration: SchemaDeclaration
    versions_dir: Path  # the declaration's `versions`, resolved

    @property
    def models(self) -> str:
        return self.declaration.models

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(self.declaration.depends_on)

    @property
    def extensions(self) -> tuple[str, ...]:
        return tuple(self.declaration.extensions)

    @property
    def statement_timeout(self) -> str:
        return self.declaration.statement_timeout

    @property
    def idle_in_transaction_session_timeout(self) -> str:
        return self.declaration.idle_in_transaction_session_timeout

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"

    @property
    def checksum_table(self) -> str:
        """The table (in schema `alembic`, next to the version table) of its applied revisions' checksums."""
        return f"gamedb_checksums_{self.name}"

    @property
    def version_table_schema(self) -> str:
        return VERSION_TABLE_SCHEMA

    @property
    def owner_role(self) -> str:
        return f"{self.name}_owner"

    @property
    def rw_role(self) -> str:
        return f"{self.name}_rw"

    @cached_property
    def metadata(self) -> MetaData:
        """The service's MetaData, imported on first use and checked to be bound to this schema."""
        return _load_metadata(self)


def discover_schemas() -> dict[str, SchemaInfo]:
    """Every schema declared by an installed distribution, by name, sorted; raises DiscoveryError."""
    found: dict[str, SchemaInfo] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        info = _describe(ep)
        if info.name in found:
            raise DiscoveryError(
                f"schema {info.name!r} is claimed by two distributions: "
                f"{found[info.name].distribution} and {info.distribution}"
            )
        found[info.name] = info
    for info in found.values():
        for dep in info.depends_on:
            if dep == info.name or dep not in found:
                raise DiscoveryError(
                    f"distribution {info.distribution}: schema {info.name!r} depends on "
                    f"{dep!r}, which is {'itself' if dep == info.name else 'not a known schema'}"
                )
    return dict(sorted(found.items()))


def load_all_models(schemas: dict[str, SchemaInfo]) -> None:
    """Import every service's models and check each MetaData's schema (scoped commands check only theirs)."""
    for info in schemas.values():
        _ = info.metadata


def get_schema(name: str, schemas: Mapping[str, SchemaInfo]) -> SchemaInfo:
    """The schema called `name`, or UnknownSchema listing the known ones."""
    if name in schemas:
        return schemas[name]
    known = ", ".join(schemas) or "none installed"
    raise UnknownSchema(f"unknown schema {name!r} (known schemas: {known})")


def _describe(ep: EntryPoint) -> SchemaInfo:
    dist = ep.dist.name if ep.dist is not None else "<unknown distribution>"
    where = f"distribution {dist}, entry point {ep.name} = {ep.value!r}"
    try:
        validate_schema_name(ep.name)
    except InvalidSchemaName as exc:
        raise DiscoveryError(f"{where}: {exc}") from None
    try:
        declaration = ep.load()
    except Exception as exc:  # noqa: BLE001 - any import failure is the service's, name it
        raise DiscoveryError(f"{where}: cannot be loaded: {type(exc).__name__}: {exc}") from None
    if not isinstance(declaration, SchemaDeclaration):
        raise DiscoveryError(f"{where}: is a {type(declaration).__name__}, not a SchemaDeclaration")
    versions_dir = Path(declaration.versions).resolve()
    if not versions_dir.is_dir():
        raise DiscoveryError(f"{where}: versions directory {versions_dir} does not exist")
    for setting in ("statement_timeout", "idle_in_transaction_session_timeout"):
        value = getattr(declaration, setting)
        if not isinstance(value, str) or not DURATION.fullmatch(value):
            raise DiscoveryError(f"{where}: {setting} {value!r} is not a duration like '5s', '500ms' or '2min'")
    for setting in ("depends_on", "extensions"):
        if isinstance(getattr(declaration, setting), str):
            raise DiscoveryError(
                f"{where}: {setting} must be a tuple of names, not the string {getattr(declaration, setting)!r}"
            )
    for dep in declaration.depends_on:
        try:
            validate_schema_name(dep)
        except InvalidSchemaName as exc:
            raise DiscoveryError(f"{where}: depends_on: {exc}") from None
    for extension in declaration.extensions:
        try:
            validate_extension_name(extension)
        except InvalidSchemaName as exc:
            raise DiscoveryError(f"{where}: extensions: {exc}") from None
    return SchemaInfo(name=ep.name, distribution=dist, declaration=declaration, versions_dir=versions_dir)


def _load_metadata(info: SchemaInfo) -> MetaData:
    where = f"distribution {info.distribution}, schema {info.name!r}"
    try:
        module = importlib.import_module(info.models)
    except Exception as exc:  # noqa: BLE001
        raise DiscoveryError(
            f"{where}: models module {info.models!r} cannot be imported: {user_code_error(exc)}"
        ) from None
    metadata = getattr(module, "metadata", None)
    if not isinstance(metadata, MetaData):
        raise DiscoveryError(f"{where}: {info.models}.metadata is not a SQLAlchemy MetaData")
    if metadata.schema != info.name:
        raise DiscoveryError(f"{where}: MetaData is bound to schema {metadata.schema!r}, expected {info.name!r}")
    strays = sorted(t.fullname for t in metadata.tables.values() if t.schema != info.name)
    if strays:
        raise DiscoveryError(f"{where}: tables outside schema {info.name!r}: {', '.join(strays)}")
    try:
        stamp_enum_schemas(metadata, info.name)
    except DiscoveryError as exc:
        raise DiscoveryError(f"{where}: {exc}") from None
    return metadata
