# Copyright 2016 CTFd LLC.
# Licensed under the Apache License, Version 2.0 (CTFd/CTFd, LICENSE): CTFd/models/__init__.py, the tables
# as declared there (types, defaults, foreign keys with their ON DELETE, unique constraints, single-table
# inheritance of files, the users <-> teams cycle). Flask-SQLAlchemy's `db` replaced by a declarative base
# in schema `ctfd`; relationships, methods and app imports stripped. CTFd names no constraints.
# ruff: noqa: RUF012 - CTFd's own spelling, kept as written
"""CTFd's users, teams, brackets, challenges and what hangs off them."""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class _DB:
    """What CTFd's models use of Flask-SQLAlchemy's `db`."""

    Column = sa.Column
    Integer = sa.Integer
    String = sa.String
    Text = sa.Text
    Boolean = sa.Boolean
    DateTime = sa.DateTime
    JSON = sa.JSON
    ForeignKey = sa.ForeignKey
    UniqueConstraint = sa.UniqueConstraint


db = _DB()
metadata = MetaData(schema="ctfd")


class Model(DeclarativeBase):
    metadata = metadata


db.Model = Model


class Notifications(db.Model):
    __tablename__ = "notifications"
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.Text)
    content = db.Column(db.Text)
    date = db.Column(db.DateTime, default=datetime.datetime.utcnow)
    user_id = db.Column(db.Integer, db.ForeignKey("ctfd.users.id"))
    team_id = db.Column(db.Integer, db.ForeignKey("ctfd.teams.id"))


class Pages(db.Model):
    __tablename__ = "pages"
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(80))
    route = db.Column(db.String(128), unique=True)
    content = db.Column(db.Text)
    draft = db.Column(db.Boolean)
    hidden = db.Column(db.Boolean)
    auth_required = db.Column(db.Boolean)
    format = db.Column(db.String(80), default="markdown")
    link_target = db.Column(db.String(80), nullable=True)


class Modules(db.Model):
    __tablename__ = "modules"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False)
    description = db.Column(db.Text)


class Challenges(db.Model):
    __tablename__ = "challenges"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80))
    description = db.Column(db.Text)
    attribution = db.Column(db.Text)
    connection_info = db.Column(db.Text)
    next_id = db.Column(db.Integer, db.ForeignKey("ctfd.challenges.id", ondelete="SET NULL"))
    max_attempts = db.Column(db.Integer, default=0)
    value = db.Column(db.Integer)
    category = db.Column(db.String(80))
    type = db.Column(db.String(80))
    state = db.Column(db.String(80), nullable=False, default="visible")
    logic = db.Column(db.String(80), nullable=False, default="any")
    initial = db.Column(db.Integer, nullable=True)
    minimum = db.Column(db.Integer, nullable=True)
    decay = db.Column(db.Integer, nullable=True)
    position = db.Column(db.Integer, nullable=False, default=0)
    function = db.Column(db.String(32), default="static")
    scheduled_at = db.Column(db.DateTime, nullable=True)
    module_id = db.Column(db.Integer, db.ForeignKey("ctfd.modules.id", ondelete="SET NULL"), nullable=True)

    requirements = db.Column(db.JSON)

    __mapper_args__ = {"polymorphic_identity": "standard", "polymorphic_on": type}


class Hints(db.Model):
    __tablename__ = "hints"
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(80))
    type = db.Column(db.String(80), default="standard")
    challenge_id = db.Column(db.Integer, db.ForeignKey("ctfd.challenges.id", ondelete="CASCADE"))
    content = db.Column(db.Text)
    cost = db.Column(db.Integer, default=0)
    requirements = db.Column(db.JSON)

    __mapper_args__ = {"polymorphic_identity": "standard", "polymorphic_on": type}


class Awards(db.Model):
    __tablename__ = "awards"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("ctfd.users.id", ondelete="CASCADE"))
    team_id = db.Column(db.Integer, db.ForeignKey("ctfd.teams.id", ondelete="CASCADE"))
    type = db.Column(db.String(80), default="standard")
    name = db.Column(db.String(80))
    description = db.Column(db.Text)
    date = db.Column(db.DateTime, default=datetime.datetime.utcnow)
    value = db.Column(db.Integer)
    category = db.Column(db.String(80))
    icon = db.Column(db.Text)
    requirements = db.Column(db.JSON)

    __mapper_args__ = {"polymorphic_identity": "standard", "polymorphic_on": type}


class Tags(db.Model):
    __tablename__ = "tags"
    id = db.Column(db.Integer, primary_key=True)
    challenge_id = db.Column(db.Integer, db.ForeignKey("ctfd.challenges.id", ondelete="CASCADE"))
    value = db.Column(db.String(80))


class Topics(db.Model):
    __tablename__ = "topics"
    id = db.Column(db.Integer, primary_key=True)
    value = db.Column(db.String(255), unique=True)


class ChallengeTopics(db.Model):
    __tablename__ = "challenge_topics"
    id = db.Column(db.Integer, primary_key=True)
    challenge_id = db.Column(db.Integer, db.ForeignKey("ctfd.challenges.id", ondelete="CASCADE"))
    topic_id = db.Column(db.Integer, db.ForeignKey("ctfd.topics.id", ondelete="CASCADE"))


class Solutions(db.Model):
    __tablename__ = "solutions"
    id = db.Column(db.Integer, primary_key=True)
    challenge_id = db.Column(db.Integer, db.ForeignKey("ctfd.challenges.id", ondelete="CASCADE"))
    content = db.Column(db.Text)
    state = db.Column(db.String(80), nullable=False, default="hidden")


class Files(db.Model):
    __tablename__ = "files"
    id = db.Column(db.Integer, primary_key=True)
    type = db.Column(db.String(80), default="standard")
    location = db.Column(db.Text)
    sha1sum = db.Column(db.String(40))

    __mapper_args__ = {"polymorphic_identity": "standard", "polymorphic_on": type}


class ChallengeFiles(Files):
    __mapper_args__ = {"polymorphic_identity": "challenge"}
    challenge_id = db.Column(db.Integer, db.ForeignKey("ctfd.challenges.id", ondelete="CASCADE"))


class PageFiles(Files):
    __mapper_args__ = {"polymorphic_identity": "page"}
    page_id = db.Column(db.Integer, db.ForeignKey("ctfd.pages.id"))


class SolutionFiles(Files):
    __mapper_args__ = {"polymorphic_identity": "solution"}
    solution_id = db.Column(db.Integer, db.ForeignKey("ctfd.solutions.id", ondelete="CASCADE"))


class Flags(db.Model):
    __tablename__ = "flags"
    id = db.Column(db.Integer, primary_key=True)
    challenge_id = db.Column(db.Integer, db.ForeignKey("ctfd.challenges.id", ondelete="CASCADE"))
    type = db.Column(db.String(80))
    content = db.Column(db.Text)
    data = db.Column(db.Text)

    __mapper_args__ = {"polymorphic_on": type}


class Brackets(db.Model):
    __tablename__ = "brackets"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(255))
    description = db.Column(db.Text)
    type = db.Column(db.String(80))


class Users(db.Model):
    __tablename__ = "users"
    __table_args__ = (db.UniqueConstraint("id", "oauth_id"), {})
    # Core attributes
    id = db.Column(db.Integer, primary_key=True)
    oauth_id = db.Column(db.Integer, unique=True)
    # User names are not constrained to be unique to allow for official/unofficial teams.
    name = db.Column(db.String(128))
    password = db.Column(db.String(128))
    email = db.Column(db.String(128), unique=True)
    type = db.Column(db.String(80))
    secret = db.Column(db.String(128))

    # Supplementary attributes
    website = db.Column(db.String(128))
    affiliation = db.Column(db.String(128))
    country = db.Column(db.String(32))
    bracket_id = db.Column(db.Integer, db.ForeignKey("ctfd.brackets.id", ondelete="SET NULL"))
    hidden = db.Column(db.Boolean, default=False)
    banned = db.Column(db.Boolean, default=False)
    verified = db.Column(db.Boolean, default=False)
    language = db.Column(db.String(32), nullable=True, default=None)
    change_password = db.Column(db.Boolean, default=False)

    # Relationship for Teams
    team_id = db.Column(db.Integer, db.ForeignKey("ctfd.teams.id"))

    created = db.Column(db.DateTime, default=datetime.datetime.utcnow)

    __mapper_args__ = {"polymorphic_identity": "user", "polymorphic_on": type}


class Teams(db.Model):
    __tablename__ = "teams"
    __table_args__ = (db.UniqueConstraint("id", "oauth_id"), {})
    # Core attributes
    id = db.Column(db.Integer, primary_key=True)
    oauth_id = db.Column(db.Integer, unique=True)
    # Team names are not constrained to be unique to allow for official/unofficial teams.
    name = db.Column(db.String(128))
    email = db.Column(db.String(128), unique=True)
    password = db.Column(db.String(128))
    secret = db.Column(db.String(128))

    # Supplementary attributes
    website = db.Column(db.String(128))
    affiliation = db.Column(db.String(128))
    country = db.Column(db.String(32))
    bracket_id = db.Column(db.Integer, db.ForeignKey("ctfd.brackets.id", ondelete="SET NULL"))
    hidden = db.Column(db.Boolean, default=False)
    banned = db.Column(db.Boolean, default=False)

    # Relationship for Users
    captain_id = db.Column(db.Integer, db.ForeignKey("ctfd.users.id", ondelete="SET NULL"))

    created = db.Column(db.DateTime, default=datetime.datetime.utcnow)
