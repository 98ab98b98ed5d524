"""init auth schema

Revision ID: accb90a7033f
Revises: 
Create Date: 2026-11-24 07:21:48.585529
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'accb90a7033f'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('auth',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute('CREATE SCHEMA IF NOT EXISTS "auth"')


def downgrade() -> None:
    op.execute('DROP SCHEMA IF EXISTS "auth" CASCADE')
