# Copyright (c) 2021 Prefect Technologies, Inc.
# Licensed under the Apache License, Version 2.0 (PrefectHQ/prefect, LICENSE):
# src/prefect/server/database/orm_models.py, the tables as declared there (the declarative base with its
# naming convention, type_annotation_map, id/created/updated columns and table names from the class name;
# types, server defaults, unique constraints, indexes, the CHECK). Relationships, methods, app imports and
# the trigram indexes (their operator class is set in Prefect's hand-written migrations, not the models)
# stripped; pydantic types replaced by `dict`, AutoEnums spelled out, Optional[X] written X | None;
# Prefect's DateTime is datetime.datetime here.
# ruff: noqa: UP042 - Prefect's own spelling (str enums), kept as written
"""Prefect's flows, blocks, concurrency limits, variables, configuration, CSRF tokens, work pools and queues."""

from __future__ import annotations

import datetime
import enum
import re
import uuid
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import FetchedValue
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, registry

from game_prefect.types import JSON, UUID, GenerateUUID, Pydantic, Timestamp

CAMEL_TO_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")
DEFAULT_BLOCK_SCHEMA_VERSION = "non-versioned"
DateTime = datetime.datetime


class Base(DeclarativeBase):
    """
    Base SQLAlchemy model that automatically infers the table name
    and provides ID, created, and updated columns
    """

    registry: ClassVar[registry] = registry(
        metadata=sa.schema.MetaData(
            schema="prefect",
            naming_convention={
                "ix": "ix_%(table_name)s__%(column_0_N_name)s",
                "uq": "uq_%(table_name)s__%(column_0_N_name)s",
                "ck": "ck_%(table_name)s__%(constraint_name)s",
                "fk": "fk_%(table_name)s__%(column_0_N_name)s__%(referred_table_name)s",
                "pk": "pk_%(table_name)s",
            },
        ),
        type_annotation_map={
            uuid.UUID: UUID,
            DateTime: Timestamp,
        },
    )

    @declared_attr.directive
    def __tablename__(cls) -> str:
        """
        By default, turn the model's camel-case class name
        into a snake-case table name. Override by providing
        an explicit `__tablename__` class property.
        """
        return CAMEL_TO_SNAKE.sub("_", cls.__name__).lower()

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True,
        server_default=GenerateUUID(),
        default=uuid.uuid4,
    )

    created: Mapped[DateTime] = mapped_column(server_default=sa.func.now())

    # onupdate is only called when statements are actually issued
    # against the database. until COMMIT is issued, this column
    # will not be updated
    updated: Mapped[DateTime] = mapped_column(
        index=True,
        server_default=sa.func.now(),
        onupdate=sa.func.now(),
        server_onupdate=FetchedValue(),
    )


metadata = Base.metadata


class Flow(Base):
    """SQLAlchemy mixin of a flow."""

    name: Mapped[str]
    tags: Mapped[list[str]] = mapped_column(JSON, server_default="[]", default=list)
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__: Any = (
        sa.UniqueConstraint("name"),
        sa.Index("ix_flow__created", "created"),
    )


class ConcurrencyLimit(Base):
    tag: Mapped[str]
    concurrency_limit: Mapped[int]
    active_slots: Mapped[list[str]] = mapped_column(JSON, server_default="[]", default=list)

    __table_args__: Any = (sa.Index("uq_concurrency_limit__tag", "tag", unique=True),)


class ConcurrencyLimitV2(Base):
    active: Mapped[bool] = mapped_column(default=True)
    name: Mapped[str]
    limit: Mapped[int]
    active_slots: Mapped[int] = mapped_column(default=0)
    denied_slots: Mapped[int] = mapped_column(default=0)

    slot_decay_per_second: Mapped[float] = mapped_column(default=0.0)
    avg_slot_occupancy_seconds: Mapped[float] = mapped_column(default=2.0)

    __table_args__: Any = (sa.UniqueConstraint("name"),)


class BlockType(Base):
    name: Mapped[str]
    slug: Mapped[str]
    logo_url: Mapped[str | None]
    documentation_url: Mapped[str | None]
    description: Mapped[str | None]
    code_example: Mapped[str | None]
    is_protected: Mapped[bool] = mapped_column(server_default="0", default=False)

    __table_args__: Any = (
        sa.Index(
            "uq_block_type__slug",
            "slug",
            unique=True,
        ),
    )


class BlockSchema(Base):
    checksum: Mapped[str]
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, server_default="{}", default=dict)
    capabilities: Mapped[list[str]] = mapped_column(JSON, server_default="[]", default=list)
    version: Mapped[str] = mapped_column(
        server_default=DEFAULT_BLOCK_SCHEMA_VERSION,
    )

    block_type_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("prefect.block_type.id", ondelete="cascade"), index=True
    )

    __table_args__: Any = (
        sa.Index(
            "uq_block_schema__checksum_version",
            "checksum",
            "version",
            unique=True,
        ),
        sa.Index("ix_block_schema__created", "created"),
        sa.Index("ix_block_schema__capabilities", "capabilities", postgresql_using="gin").ddl_if(dialect="postgresql"),
    )


class BlockSchemaReference(Base):
    name: Mapped[str]

    parent_block_schema_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("prefect.block_schema.id", ondelete="cascade")
    )

    reference_block_schema_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("prefect.block_schema.id", ondelete="cascade")
    )


class BlockDocument(Base):
    name: Mapped[str] = mapped_column(index=True)
    data: Mapped[Any] = mapped_column(JSON, server_default="{}", default=dict)
    is_anonymous: Mapped[bool] = mapped_column(server_default="0", index=True)

    block_type_name: Mapped[str | None]

    block_type_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("prefect.block_type.id", ondelete="cascade"))

    block_schema_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("prefect.block_schema.id", ondelete="cascade"))

    __table_args__: Any = (
        sa.Index(
            "uq_block__type_id_name",
            "block_type_id",
            "name",
            unique=True,
        ),
        sa.Index("ix_block_document__block_type_name__name", "block_type_name", "name"),
    )


class BlockDocumentReference(Base):
    name: Mapped[str]

    parent_block_document_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("prefect.block_document.id", ondelete="cascade"),
    )

    reference_block_document_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("prefect.block_document.id", ondelete="cascade"),
    )

    __table_args__: Any = (
        sa.CheckConstraint(
            "parent_block_document_id != reference_block_document_id",
            name="ck_block_document_reference__no_self_reference",
        ),
    )


class Configuration(Base):
    key: Mapped[str] = mapped_column(index=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__: Any = (sa.UniqueConstraint("key"),)


class Variable(Base):
    name: Mapped[str]
    value: Mapped[Any | None] = mapped_column(JSON)
    tags: Mapped[list[str]] = mapped_column(JSON, server_default="[]", default=list)

    __table_args__: Any = (sa.UniqueConstraint("name"),)


class CsrfToken(Base):
    token: Mapped[str]
    client: Mapped[str] = mapped_column(unique=True)
    expiration: Mapped[DateTime]


class SavedSearch(Base):
    """SQLAlchemy model of a saved search."""

    name: Mapped[str]
    filters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, server_default="[]", default=list)

    __table_args__: Any = (sa.UniqueConstraint("name"),)


class WorkQueueStatus(str, enum.Enum):
    """Enumeration of work queue statuses (an AutoEnum: values are the names)."""

    READY = "READY"
    NOT_READY = "NOT_READY"
    PAUSED = "PAUSED"


class WorkPoolStatus(str, enum.Enum):
    """Enumeration of work pool statuses."""

    READY = "READY"
    NOT_READY = "NOT_READY"
    PAUSED = "PAUSED"


class WorkQueue(Base):
    """SQLAlchemy model of a work queue"""

    name: Mapped[str]

    filter: Mapped[dict[str, Any] | None] = mapped_column(Pydantic(dict[str, Any]))
    description: Mapped[str] = mapped_column(default="", server_default="")
    is_paused: Mapped[bool] = mapped_column(server_default="0", default=False)
    concurrency_limit: Mapped[int | None]
    priority: Mapped[int]

    last_polled: Mapped[DateTime | None]
    status: Mapped[WorkQueueStatus] = mapped_column(
        sa.Enum(WorkQueueStatus, name="work_queue_status"),
        default=WorkQueueStatus.NOT_READY,
        server_default=WorkQueueStatus.NOT_READY,
    )

    work_pool_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("prefect.work_pool.id", ondelete="cascade"), index=True
    )

    __table_args__: ClassVar[Any] = (
        sa.UniqueConstraint("work_pool_id", "name"),
        sa.Index("ix_work_queue__work_pool_id_priority", "work_pool_id", "priority"),
    )


class WorkPool(Base):
    """SQLAlchemy model of an worker"""

    name: Mapped[str]
    description: Mapped[str | None]
    type: Mapped[str] = mapped_column(index=True)
    base_job_template: Mapped[dict[str, Any]] = mapped_column(JSON, server_default="{}", default={})
    is_paused: Mapped[bool] = mapped_column(server_default="0", default=False)
    default_queue_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID,
        sa.ForeignKey("prefect.work_queue.id", ondelete="RESTRICT", use_alter=True),
        nullable=True,
    )
    concurrency_limit: Mapped[int | None]

    status: Mapped[WorkPoolStatus] = mapped_column(
        sa.Enum(WorkPoolStatus, name="work_pool_status"),
        default=WorkPoolStatus.NOT_READY,
        server_default=WorkPoolStatus.NOT_READY,
    )
    last_transitioned_status_at: Mapped[DateTime | None]
    last_status_event_id: Mapped[uuid.UUID | None]

    storage_configuration: Mapped[dict[str, Any]] = mapped_column(
        Pydantic(dict[str, Any]),
        server_default="{}",
        default=dict,
        nullable=False,
    )

    __table_args__: Any = (sa.UniqueConstraint("name"),)
