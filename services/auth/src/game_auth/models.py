"""Accounts and their refresh tokens, in schema `auth`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, MetaData, String, Text, false, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gamedb import NAMING_CONVENTION

metadata = MetaData(schema="auth", naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata


class User(Base):
    """A player account. Login and email are unique regardless of case."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    login: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled: Mapped[bool] = mapped_column(server_default=false())

    refresh_tokens: Mapped[list[RefreshToken]] = relationship(back_populates="user", passive_deletes=True)


Index("uq_users_lower_login", func.lower(User.login), unique=True)
Index("uq_users_lower_email", func.lower(User.email), unique=True)


class RefreshToken(Base):
    """A refresh token, stored as a hash; expired tokens are found through the expiry index."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("auth.users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="refresh_tokens")
