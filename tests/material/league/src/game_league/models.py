"""The league: players, teams, seasons, matches, rewards... in schema `league`.

Written the way service teams write models, not the way gamedb's authors would: enums through bare
annotations, on an abstract base and on a mixin, one enum shared by four tables, one in an ARRAY.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import CITEXT, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from game_league.types import Slug
from gamedb import NAMING_CONVENTION
from gamedb.objects import Function, declare_objects

metadata = MetaData(schema="league", naming_convention=NAMING_CONVENTION)


class Visibility(enum.Enum):
    public = "public"
    friends = "friends"
    hidden = "hidden"


class PlayerStatus(enum.Enum):
    active = "active"
    suspended = "suspended"
    deleted = "deleted"


class MatchState(enum.Enum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    FINISHED = "finished"


class Role(enum.Enum):
    tank = "tank"
    healer = "healer"
    damage = "damage"


class Source(enum.Enum):
    system = "system"
    admin = "admin"


class Base(DeclarativeBase):
    metadata = metadata


class Audited(Base):
    """Abstract base: every audited table says who made the row (an enum on an abstract base)."""

    __abstract__ = True
    source: Mapped[Source] = mapped_column(server_default=text("'system'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class HasVisibility:
    """Mixin: the shared enum, declared by annotation only (SQLAlchemy leaves its schema unset)."""

    visibility: Mapped[Visibility] = mapped_column(server_default=text("'public'"))


class Player(HasVisibility, Audited):
    __tablename__ = "players"
    __table_args__ = (CheckConstraint(r"country ~ '^[A-Z]{2}$'", name="country_iso"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=func.gen_random_uuid())
    handle: Mapped[str] = mapped_column(CITEXT, unique=True)
    email: Mapped[str] = mapped_column(CITEXT)
    status: Mapped[PlayerStatus] = mapped_column(server_default=text("'active'"))
    roles: Mapped[list[Role]] = mapped_column(ARRAY(Enum(Role, name="player_role")), server_default=text("'{}'"))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    country: Mapped[str] = mapped_column(String(2), server_default="ZZ")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("league.teams.id", use_alter=True, ondelete="SET NULL"))


class Team(HasVisibility, Audited):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    slug: Mapped[str] = mapped_column(Slug, unique=True)
    name: Mapped[str] = mapped_column(Text)
    captain_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("league.players.id", ondelete="SET NULL"))


class Season(Audited):
    __tablename__ = "seasons"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="ends_after_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Match(Base):
    __tablename__ = "matches"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("league.seasons.id"), index=True)
    state: Mapped[MatchState] = mapped_column(
        Enum(MatchState, name="match_state", values_callable=lambda e: [m.value for m in e]),
        server_default=text("'scheduled'"),
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class MatchPlayer(Base):
    """The association of players and matches, keyed by both."""

    __tablename__ = "match_players"

    match_id: Mapped[int] = mapped_column(ForeignKey("league.matches.id", ondelete="CASCADE"), primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("league.players.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[Role] = mapped_column(Enum(Role, name="player_role"))
    score: Mapped[int] = mapped_column(server_default=text("0"))


class Channel(HasVisibility, Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(Text, server_default="")


class Guild(HasVisibility, Base):
    __tablename__ = "guilds"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=func.gen_random_uuid())
    name: Mapped[str] = mapped_column(CITEXT, unique=True)
    motto: Mapped[str | None] = mapped_column(Text)


class Achievement(Audited):
    __tablename__ = "achievements"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    points: Mapped[int] = mapped_column(server_default=text("10"))


class PlayerAchievement(Base):
    __tablename__ = "player_achievements"

    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("league.players.id", ondelete="CASCADE"), primary_key=True)
    achievement_id: Mapped[int] = mapped_column(ForeignKey("league.achievements.id"), primary_key=True)
    earned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reward(Audited):
    __tablename__ = "rewards"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_not_negative"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("league.players.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2), server_default=text("0"))
    reason: Mapped[str] = mapped_column(Text)


class Ban(Base):
    __tablename__ = "bans"
    __table_args__ = (
        # at most one ban in force per player
        Index("uq_bans_active_player", "player_id", unique=True, postgresql_where=text("lifted_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    player_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("league.players.id", ondelete="CASCADE"))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(HasVisibility, Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("CURRENT_TIMESTAMP"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{\"v\": 1}'::jsonb"))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))


# An expression index on a function the service declares (created before the tables by the revision).
Index("ix_players_normalized_handle", func.normalize_handle(Player.handle))
declare_objects(
    metadata,
    Function(
        "normalize_handle(h text)",
        "RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower(regexp_replace(h, '[^a-zA-Z0-9]', '', 'g')) $$",
    ),
)
