"""Initial schema: users, tokens, channels, abilities, options, redemptions.

Revision ID: main_0001
Revises:
Create Date: 2025-01-01 00:00:00

Written by hand; tests/libs/common/db/test_migrations.py checks that it yields exactly the
models' schema on SQLite, PostgreSQL and MariaDB. Server defaults are strings (rendered
``DEFAULT '0'``), which all three accept for integer and boolean columns. TEXT columns have no
server default (MySQL < 8.0.13 refuses them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "main_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def credential(length: int) -> sa.types.TypeEngine[str]:
    """VARCHAR compared case-sensitively on MySQL/MariaDB too (binary collation)."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(64), server_default="", nullable=False),
        sa.Column("role", sa.Integer(), server_default="1", nullable=False),
        sa.Column("status", sa.Integer(), server_default="1", nullable=False),
        sa.Column("email", sa.String(191), server_default="", nullable=False),
        sa.Column("github_id", sa.String(191), server_default="", nullable=False),
        sa.Column("wechat_id", sa.String(191), server_default="", nullable=False),
        sa.Column("lark_id", sa.String(191), server_default="", nullable=False),
        sa.Column("oidc_id", sa.String(191), server_default="", nullable=False),
        sa.Column("access_token", credential(32), nullable=True),
        sa.Column("quota", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("used_quota", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("request_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("group", sa.String(64), server_default="default", nullable=False),
        sa.Column("aff_code", sa.String(32), nullable=True),
        sa.Column("inviter_id", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        **MYSQL_OPTIONS,
    )
    op.create_index("uq_users_username", "users", ["username"], unique=True)
    op.create_index("uq_users_access_token", "users", ["access_token"], unique=True)
    op.create_index("uq_users_aff_code", "users", ["aff_code"], unique=True)
    op.create_index("ix_users_email", "users", ["email"])
    op.create_index("ix_users_github_id", "users", ["github_id"])
    op.create_index("ix_users_wechat_id", "users", ["wechat_id"])
    op.create_index("ix_users_lark_id", "users", ["lark_id"])
    op.create_index("ix_users_oidc_id", "users", ["oidc_id"])
    op.create_index("ix_users_inviter_id", "users", ["inviter_id"])

    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), server_default="0", nullable=False),
        sa.Column("key", credential(48), nullable=False),
        sa.Column("status", sa.Integer(), server_default="1", nullable=False),
        sa.Column("name", sa.String(128), server_default="", nullable=False),
        sa.Column("created_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("accessed_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("expired_time", sa.BigInteger(), server_default="-1", nullable=False),
        sa.Column("remain_quota", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("unlimited_quota", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("used_quota", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("models", sa.Text(), nullable=True),
        sa.Column("subnet", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        **MYSQL_OPTIONS,
    )
    op.create_index("uq_tokens_key", "tokens", ["key"], unique=True)
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])
    op.create_index("ix_tokens_name", "tokens", ["name"])

    op.create_table(
        "channels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("type", sa.Integer(), server_default="0", nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), server_default="1", nullable=False),
        sa.Column("name", sa.String(128), server_default="", nullable=False),
        sa.Column("weight", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("test_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("response_time", sa.Integer(), server_default="0", nullable=False),
        sa.Column("base_url", sa.String(512), server_default="", nullable=False),
        sa.Column("other", sa.Text(), nullable=True),
        sa.Column("balance", sa.Double(), server_default="0", nullable=False),
        sa.Column("balance_updated_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("group", sa.String(255), server_default="default", nullable=False),
        sa.Column("used_quota", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("model_mapping", sa.Text(), nullable=True),
        sa.Column("priority", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_channels"),
        **MYSQL_OPTIONS,
    )
    op.create_index("ix_channels_name", "channels", ["name"])

    op.create_table(
        "abilities",
        sa.Column("group", sa.String(64), nullable=False),
        sa.Column("model", sa.String(191), nullable=False),
        sa.Column("channel_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("priority", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("group", "model", "channel_id", name="pk_abilities"),
        **MYSQL_OPTIONS,
    )
    op.create_index("ix_abilities_group_model_enabled", "abilities", ["group", "model", "enabled"])
    op.create_index("ix_abilities_channel_id", "abilities", ["channel_id"])

    op.create_table(
        "options",
        sa.Column("key", sa.String(191), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_options"),
        **MYSQL_OPTIONS,
    )

    op.create_table(
        "redemptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), server_default="0", nullable=False),
        sa.Column("key", credential(32), nullable=False),
        sa.Column("status", sa.Integer(), server_default="1", nullable=False),
        sa.Column("name", sa.String(128), server_default="", nullable=False),
        sa.Column("quota", sa.BigInteger(), server_default="100", nullable=False),
        sa.Column("created_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("redeemed_time", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_redemptions"),
        **MYSQL_OPTIONS,
    )
    op.create_index("uq_redemptions_key", "redemptions", ["key"], unique=True)
    op.create_index("ix_redemptions_name", "redemptions", ["name"])


def downgrade() -> None:
    # Dropping a table drops its indexes on every backend.
    for table in ("redemptions", "options", "abilities", "channels", "tokens", "users"):
        op.drop_table(table)
