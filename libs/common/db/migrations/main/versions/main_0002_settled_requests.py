"""Billing's idempotency keys: settled_requests.

Revision ID: main_0002
Revises: main_0001
Create Date: 2025-02-01 00:00:00

One row per usage request billing has charged, inserted in the charge's own transaction.
`request_id` uses the binary collation on MySQL/MariaDB so that ids compare case-sensitively,
as on PostgreSQL and SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "main_0002"
down_revision: str | Sequence[str] | None = "main_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "settled_requests",
        sa.Column(
            "request_id",
            sa.String(64).with_variant(
                mysql.VARCHAR(64, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
            ),
            nullable=False,
        ),
        sa.Column("settled_at", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("log_pending", sa.Boolean(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_settled_requests"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index("ix_settled_requests_settled_at", "settled_requests", ["settled_at"])


def downgrade() -> None:
    op.drop_table("settled_requests")
