"""init inventory schema

Revision ID: 102e565cb88d
Revises: 
Create Date: 2026-11-24 07:21:48.924979
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '102e565cb88d'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('inventory',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute('CREATE SCHEMA IF NOT EXISTS "inventory"')


def downgrade() -> None:
    op.execute('DROP SCHEMA IF EXISTS "inventory" CASCADE')
