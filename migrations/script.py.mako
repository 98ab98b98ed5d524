<%
    # gamedb hands over the seed's init body (CREATE / DROP SCHEMA) for a schema's first revision.
    init = getattr(config.attributes.get("gamedb"), "init_revision", None)
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
% if init:
    ${init["upgrade"]}
% endif
% if upgrades or not init:
    ${upgrades if upgrades else "pass"}
% endif


def downgrade() -> None:
% if downgrades or not init:
    ${downgrades if downgrades else "pass"}
% endif
% if init:
    ${init["downgrade"]}
% endif
