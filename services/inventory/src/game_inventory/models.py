"""The item catalogue and what each player holds, in schema `inventory`.

Owners are auth user ids, deliberately without a foreign key: services never reference each
other's tables (one service's downgrade must never depend on another's).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gamedb import NAMING_CONVENTION

metadata = MetaData(schema="inventory", naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata


class Rarity(enum.Enum):
    common = "common"
    uncommon = "uncommon"
    rare = "rare"
    epic = "epic"
    legendary = "legendary"


class Item(Base):
    """A catalogue entry: what an item is, not who has it."""

    __tablename__ = "items"
    __table_args__ = (CheckConstraint("max_stack > 0", name="max_stack_positive"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    rarity: Mapped[Rarity] = mapped_column(
        Enum(Rarity, name="item_rarity", values_callable=lambda e: [m.value for m in e]),
        server_default=text("'common'"),
    )
    max_stack: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PlayerItem(Base):
    """How many of one item one player owns."""

    __tablename__ = "player_items"
    __table_args__ = (
        UniqueConstraint("owner_user_id", "item_id"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    owner_user_id: Mapped[int] = mapped_column(BigInteger)  # auth.users.id, no cross-schema FK
    item_id: Mapped[int] = mapped_column(ForeignKey("inventory.items.id", ondelete="RESTRICT"), index=True)
    quantity: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    item: Mapped[Item] = relationship()
