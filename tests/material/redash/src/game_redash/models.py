# Copyright (c) 2013-2020, Arik Fraimovich. All rights reserved.
# BSD 2-Clause License (getredash/redash, LICENSE): redash/models/{base,mixins,organizations,users,changes,
# __init__}.py, the tables as declared there (types, nullability through Redash's `Column` partial, defaults,
# indexes, constraints); Flask-SQLAlchemy's `db` replaced by a declarative base in schema `redash`;
# relationships, methods and app imports stripped. Redash names no constraints (no naming convention).
"""Redash's organizations, users, groups, data sources, queries and their results, changes, alerts."""

from __future__ import annotations

import functools

import sqlalchemy as db
from sqlalchemy import MetaData, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, JSONB
from sqlalchemy.orm import DeclarativeBase

from game_redash.types import EmailType, EncryptedConfiguration, JSONText, TSVectorType

metadata = MetaData(schema="redash")


class Base(DeclarativeBase):
    metadata = metadata


Column = functools.partial(db.Column, nullable=False)


def primary_key(name):
    return Column(db.Integer, primary_key=True)


DEFAULT_PERMISSIONS = ["create_dashboard", "create_query", "edit_dashboard", "edit_query", "view_query"]


class TimestampMixin:
    updated_at = Column(db.DateTime(True), default=db.func.now(), nullable=False)
    created_at = Column(db.DateTime(True), default=db.func.now(), nullable=False)


class GFKBase:
    object_type = Column(db.String(255))
    object_id = Column(db.Integer)


class Organization(TimestampMixin, Base):
    __tablename__ = "organizations"

    id = primary_key("Organization")
    name = Column(db.String(255))
    slug = Column(db.String(255), unique=True)
    settings = Column(JSONB, default={})


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (db.Index("users_org_id_email", "org_id", "email", unique=True),)

    id = primary_key("User")
    org_id = Column(db.Integer, db.ForeignKey("redash.organizations.id"))
    name = Column(db.String(320))
    email = Column(EmailType)
    password_hash = Column(db.String(128), nullable=True)
    group_ids = Column("groups", ARRAY(db.Integer), nullable=True)
    api_key = Column(db.String(40), unique=True)
    disabled_at = Column(db.DateTime(True), default=None, nullable=True)
    details = Column(JSONB, nullable=True, server_default="{}", default={})


class Group(Base):
    __tablename__ = "groups"

    id = primary_key("Group")
    org_id = Column(db.Integer, db.ForeignKey("redash.organizations.id"))
    type = Column(db.String(255), default="regular")
    name = Column(db.String(100))
    permissions = Column(ARRAY(db.String(255)), default=DEFAULT_PERMISSIONS)
    created_at = Column(db.DateTime(True), default=db.func.now())


class AccessPermission(GFKBase, Base):
    __tablename__ = "access_permissions"

    id = primary_key("AccessPermission")
    access_type = Column(db.String(255))
    grantor_id = Column(db.Integer, db.ForeignKey("redash.users.id"))
    grantee_id = Column(db.Integer, db.ForeignKey("redash.users.id"))


class Change(GFKBase, Base):
    __tablename__ = "changes"

    id = primary_key("Change")
    object_id = Column(db.Integer)
    object_version = Column(db.Integer, default=0)
    user_id = Column(db.Integer, db.ForeignKey("redash.users.id"))
    change = Column(JSONB)
    created_at = Column(db.DateTime(True), default=db.func.now())


class DataSource(Base):
    __tablename__ = "data_sources"
    __table_args__ = (db.Index("data_sources_org_id_name", "org_id", "name"),)

    id = primary_key("DataSource")
    org_id = Column(db.Integer, db.ForeignKey("redash.organizations.id"))
    name = Column(db.String(255))
    type = Column(db.String(255))
    options = Column("encrypted_options", EncryptedConfiguration(db.Text, "secret", None))
    queue_name = Column(db.String(255), default="queries")
    scheduled_queue_name = Column(db.String(255), default="scheduled_queries")
    created_at = Column(db.DateTime(True), default=db.func.now())


class DataSourceGroup(Base):
    __tablename__ = "data_source_groups"

    id = primary_key("DataSourceGroup")
    data_source_id = Column(db.Integer, db.ForeignKey("redash.data_sources.id"))
    group_id = Column(db.Integer, db.ForeignKey("redash.groups.id"))
    view_only = Column(db.Boolean, default=False)


class QueryResult(Base):
    __tablename__ = "query_results"

    id = primary_key("QueryResult")
    org_id = Column(db.Integer, db.ForeignKey("redash.organizations.id"))
    data_source_id = Column(db.Integer, db.ForeignKey("redash.data_sources.id"))
    query_hash = Column(db.String(32), index=True)
    query_text = Column("query", db.Text)
    data = Column(JSONText, nullable=True)
    runtime = Column(DOUBLE_PRECISION)
    retrieved_at = Column(db.DateTime(True))


class Query(TimestampMixin, Base):
    __tablename__ = "queries"

    id = primary_key("Query")
    version = Column(db.Integer, default=1)
    org_id = Column(db.Integer, db.ForeignKey("redash.organizations.id"))
    data_source_id = Column(db.Integer, db.ForeignKey("redash.data_sources.id"), nullable=True)
    latest_query_data_id = Column(db.Integer, db.ForeignKey("redash.query_results.id"), nullable=True)
    name = Column(db.String(255))
    description = Column(db.String(4096), nullable=True)
    query_text = Column("query", db.Text)
    query_hash = Column(db.String(32))
    api_key = Column(db.String(40))
    user_id = Column(db.Integer, db.ForeignKey("redash.users.id"))
    last_modified_by_id = Column(db.Integer, db.ForeignKey("redash.users.id"), nullable=True)
    is_archived = Column(db.Boolean, default=False, index=True)
    is_draft = Column(db.Boolean, default=True, index=True)
    schedule = Column(JSONB, nullable=True)
    schedule_failures = Column(db.Integer, default=0)
    options = Column(JSONB, default={})
    search_vector = Column(
        TSVectorType(
            "id",
            "name",
            "description",
            "query",
            weights={"name": "A", "id": "B", "description": "C", "query": "D"},
        ),
        nullable=True,
    )
    tags = Column("tags", ARRAY(db.Unicode), nullable=True)


class Favorite(TimestampMixin, Base):
    __tablename__ = "favorites"
    __table_args__ = (UniqueConstraint("object_type", "object_id", "user_id", name="unique_favorite"),)

    id = primary_key("Favorite")
    org_id = Column(db.Integer, db.ForeignKey("redash.organizations.id"))
    object_type = Column(db.Unicode(255))
    object_id = Column(db.Integer)
    user_id = Column(db.Integer, db.ForeignKey("redash.users.id"))


class Alert(TimestampMixin, Base):
    __tablename__ = "alerts"

    id = primary_key("Alert")
    name = Column(db.String(255))
    query_id = Column(db.Integer, db.ForeignKey("redash.queries.id"))
    user_id = Column(db.Integer, db.ForeignKey("redash.users.id"))
    options = Column(JSONB, nullable=True)
    state = Column(db.String(255), default="unknown")
    last_triggered_at = Column(db.DateTime(True), nullable=True)
    rearm = Column(db.Integer, nullable=True)


class NotificationDestination(Base):
    __tablename__ = "notification_destinations"
    __table_args__ = (db.Index("notification_destinations_org_id_name", "org_id", "name", unique=True),)

    id = primary_key("NotificationDestination")
    org_id = Column(db.Integer, db.ForeignKey("redash.organizations.id"))
    user_id = Column(db.Integer, db.ForeignKey("redash.users.id"))
    name = Column(db.String(255))
    type = Column(db.String(255))
    options = Column("encrypted_options", EncryptedConfiguration(db.Text, "secret", None))
    created_at = Column(db.DateTime(True), default=db.func.now())
