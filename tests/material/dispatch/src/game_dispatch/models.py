# Copyright 2019 Netflix, Inc.
# Licensed under the Apache License, Version 2.0 (Netflix/dispatch, LICENSE): src/dispatch/database/core.py
# (the declarative base naming tables after their class), src/dispatch/models.py (the mixins),
# src/dispatch/{organization,project,tag,tag_type}/models.py: the tables as declared there. Pydantic
# models, relationships, listeners, the full-text search triggers (make_searchable) and app imports
# stripped; Organization's `dispatch_core` schema is this service's schema. sqlalchemy_utils'
# TSVectorType (sqlalchemy-utils, BSD 3-Clause) is reduced to what decides the column.
# ruff: noqa: UP004, UP017 - Dispatch's own spelling, kept as written
"""Dispatch's organizations, projects, tag types and tags."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, MetaData, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import DeclarativeBase, declared_attr
from sqlalchemy.sql import false
from sqlalchemy.types import TypeDecorator

metadata = MetaData(schema="dispatch")


class TSVectorType(TypeDecorator):
    impl = TSVECTOR
    cache_ok = True

    def __init__(self, *args, **kwargs):
        self.columns = args
        self.options = kwargs
        super().__init__()


def resolve_table_name(name):
    """Resolves table names to their mapped names."""
    names = re.split("(?=[A-Z])", name)
    return "_".join([x.lower() for x in names if x])


class Base(DeclarativeBase):
    """Base class for all SQLAlchemy models."""

    metadata = metadata

    @declared_attr.directive
    def __tablename__(cls):
        return resolve_table_name(cls.__name__)


class ProjectMixin(object):
    """Project mixin for adding project relationships to models."""

    @declared_attr
    def project_id(cls):
        """Returns the project_id column."""
        return Column(Integer, ForeignKey("dispatch.project.id", ondelete="CASCADE"))


class TimeStampMixin(object):
    """Timestamping mixin for created_at and updated_at fields."""

    created_at = Column(DateTime, default=lambda: datetime.now(timezone.utc))
    created_at._creation_order = 9998
    updated_at = Column(DateTime, default=lambda: datetime.now(timezone.utc))
    updated_at._creation_order = 9998


class Organization(Base):
    """SQLAlchemy model for organization resources."""

    id = Column(Integer, primary_key=True)
    name = Column(String, unique=True)
    slug = Column(String)
    default = Column(Boolean)
    description = Column(String)
    banner_enabled = Column(Boolean)
    banner_color = Column(String)
    banner_text = Column(String)

    search_vector = Column(TSVectorType("name", "description", weights={"name": "A", "description": "B"}))


class Project(Base):
    id = Column(Integer, primary_key=True)
    name = Column(String)
    display_name = Column(String, nullable=False, server_default="")

    description = Column(String)
    default = Column(Boolean, default=False)
    color = Column(String)

    annual_employee_cost = Column(Integer, default=50000)
    business_year_hours = Column(Integer, default=2080)

    owner_email = Column(String)
    owner_conversation = Column(String)

    organization_id = Column(Integer, ForeignKey(Organization.id))

    enabled = Column(Boolean, default=True, server_default="t")
    allow_self_join = Column(Boolean, default=True, server_default="t")

    send_daily_reports = Column(Boolean)
    send_weekly_reports = Column(Boolean)

    weekly_report_notification_id = Column(Integer, nullable=True)

    select_commander_visibility = Column(Boolean, default=True, server_default="t")

    stable_priority_id = Column(Integer, nullable=True)

    # allows for alternative names for storage folders inside incident/case
    storage_folder_one = Column(String, nullable=True)
    storage_folder_two = Column(String, nullable=True)
    # when true, storage_folder_one is used as the primary storage folder for incidents/cases
    storage_use_folder_one_as_primary = Column(Boolean, default=False, nullable=True)
    # when true, folder and incident docs will be created with the title of the incident
    storage_use_title = Column(Boolean, default=False, server_default=false())

    # allows customized instructions for reporting incidents
    report_incident_instructions = Column(String, nullable=True)
    report_incident_title_hint = Column(String, nullable=True)
    report_incident_description_hint = Column(String, nullable=True)

    # controls whether to suggest security events over incidents
    suggest_security_event_over_incident = Column(Boolean, default=False, server_default="f")

    snooze_extension_oncall_service_id = Column(Integer, nullable=True)

    search_vector = Column(TSVectorType("name", "description", weights={"name": "A", "description": "B"}))


class TagType(Base, TimeStampMixin, ProjectMixin):
    __table_args__ = (UniqueConstraint("name", "project_id"),)
    id = Column(Integer, primary_key=True)
    name = Column(String)
    description = Column(String)
    exclusive = Column(Boolean, default=False)
    required = Column(Boolean, default=False)
    discoverable_case = Column(Boolean, default=True)
    discoverable_incident = Column(Boolean, default=True)
    discoverable_query = Column(Boolean, default=True)
    discoverable_signal = Column(Boolean, default=True)
    discoverable_source = Column(Boolean, default=True)
    discoverable_document = Column(Boolean, default=True)
    color = Column(String)
    icon = Column(String)
    search_vector = Column(TSVectorType("name", regconfig="pg_catalog.simple"))
    use_for_project_folder = Column(Boolean, default=False, server_default="f")
    genai_suggestions = Column(Boolean, default=False)


class Tag(Base, TimeStampMixin, ProjectMixin):
    __table_args__ = (UniqueConstraint("name", "project_id"),)

    # Columns
    id = Column(Integer, primary_key=True)
    name = Column(String)
    description = Column(String)
    uri = Column(String)
    source = Column(String)
    external_id = Column(String)
    discoverable = Column(Boolean, default=True)

    # Relationships
    tag_type_id = Column(Integer, ForeignKey("dispatch.tag_type.id"), nullable=False)

    # the catalog here is simple to help matching "named entities"
    search_vector = Column(TSVectorType("name", "description", "external_id", regconfig="pg_catalog.simple"))
