"""Initial schema: logs.

Revision ID: logs_0001
Revises:
Create Date: 2025-01-01 00:00:00

Written by hand; tests/libs/common/db/test_migrations.py checks that it yields exactly the
model's schema on SQLite, PostgreSQL and MariaDB. The id is BIGINT (the table grows without
bound) except on SQLite, which autoincrements INTEGER PRIMARY KEY only (64-bit there anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "logs_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "logs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("type", sa.Integer(), server_default="0", nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("username", sa.String(64), server_default="", nullable=False),
        sa.Column("token_name", sa.String(128), server_default="", nullable=False),
        sa.Column("token_id", sa.Integer(), server_default="0", nullable=False),
        sa.Column("model_name", sa.String(191), server_default="", nullable=False),
        sa.Column("quota", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cached_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reasoning_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("channel_id", sa.Integer(), server_default="0", nullable=False),
        sa.Column("request_id", sa.String(64), server_default="", nullable=False),
        sa.Column("elapsed_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("is_stream", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("system_prompt_reset", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("ratios", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_logs"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index("ix_logs_created_at_type", "logs", ["created_at", "type"])
    op.create_index("ix_logs_user_id_created_at", "logs", ["user_id", "created_at"])
    op.create_index("ix_logs_username", "logs", ["username"])
    op.create_index("ix_logs_token_name", "logs", ["token_name"])
    op.create_index("ix_logs_model_name", "logs", ["model_name"])
    op.create_index("ix_logs_channel_id", "logs", ["channel_id"])
    op.create_index("ix_logs_request_id", "logs", ["request_id"])


def downgrade() -> None:
    op.drop_table("logs")
