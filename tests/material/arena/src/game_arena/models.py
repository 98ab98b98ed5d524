"""The arena: players, teams, their wallets and a match-event log partitioned by month, in schema `arena`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gamedb import NAMING_CONVENTION
from gamedb.objects import (
    Function,
    MaterializedView,
    Policy,
    Procedure,
    RowSecurity,
    Trigger,
    View,
    declare_objects,
)

metadata = MetaData(schema="arena", naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Player(Base):
    __tablename__ = "players"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Wallet(Base):
    """One row per player: what a player's session may see of it is its own row only (RLS)."""

    __tablename__ = "wallets"
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id"), primary_key=True)
    coins: Mapped[int] = mapped_column(BigInteger, server_default="0")


class MatchEvent(Base):
    """Append-only, one partition per month (made by `gamedb partitions -x schema=arena --ahead N`)."""

    __tablename__ = "match_events"
    __table_args__ = (
        Index("ix_match_events_player_id", "player_id"),
        {"postgresql_partition_by": "RANGE (occurred_at)"},
    )
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    player_id: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int]


declare_objects(
    metadata,
    Function(
        "set_updated_at()",
        "RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$",
    ),
    Trigger("players_updated_at", "players", "BEFORE UPDATE", "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"),
    Trigger("teams_updated_at", "teams", "BEFORE UPDATE", "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"),
    View(
        "active_players", "SELECT id, handle FROM players WHERE team_id IS NOT NULL", options=("security_invoker=true",)
    ),
    MaterializedView(
        "leaderboard",
        "SELECT player_id, sum(points) AS points FROM match_events GROUP BY player_id",
        unique_key=("player_id",),
    ),
    Function(
        "refresh_leaderboard()",
        "RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT\n"
        "AS $$ BEGIN REFRESH MATERIALIZED VIEW CONCURRENTLY leaderboard; END $$",
    ),
    Procedure(
        "award(p_player bigint, p_coins bigint)",
        "LANGUAGE plpgsql SET search_path FROM CURRENT"
        " AS $$ BEGIN UPDATE wallets SET coins = coins + p_coins WHERE player_id = p_player; END $$",
    ),
    RowSecurity("wallets", enabled=True),
    Policy("own_wallet", "wallets", using="player_id = current_setting('game.player_id', true)::bigint"),
)
