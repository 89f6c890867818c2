"""The dashboard's aggregate: log_daily_usage, filled from the consume logs already there.

Revision ID: logs_0002
Revises: logs_0001
Create Date: 2025-03-01 00:00:00

One row per (user, UTC day, model) with the request count, quota and tokens of that day's
consume logs (type 2). Billing keeps it current from now on; the upgrade sums the logs written
before it (a database migrated from One API gets its dashboard history). `day` is
`created_at // 86400`. `model_name` uses the binary collation on MySQL/MariaDB, and the
backfill groups by it, so that model names differing in case stay apart, as on PostgreSQL and
SQLite. The downgrade drops the table; the logs are untouched either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "logs_0002"
down_revision: str | Sequence[str] | None = "logs_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SECONDS_PER_DAY = 86400
CONSUME = 2


def upgrade() -> None:
    daily = op.create_table(
        "log_daily_usage",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "model_name",
            sa.String(191).with_variant(
                mysql.VARCHAR(191, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
            ),
            nullable=False,
        ),
        sa.Column("request_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("quota", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", "model_name", name="pk_log_daily_usage"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index("ix_log_daily_usage_day", "log_daily_usage", ["day"])
    assert daily is not None
    _backfill(daily)


def downgrade() -> None:
    op.drop_table("log_daily_usage")


def _backfill(daily: sa.Table) -> None:
    """Sum the existing consume logs into `daily`, in one INSERT ... SELECT."""
    logs = sa.table(
        "logs",
        sa.column("user_id", sa.Integer()),
        sa.column("created_at", sa.BigInteger()),
        sa.column("type", sa.Integer()),
        sa.column("model_name", sa.String()),
        sa.column("quota", sa.BigInteger()),
        sa.column("prompt_tokens", sa.Integer()),
        sa.column("completion_tokens", sa.Integer()),
    )
    # Integer division on every backend; a literal, not a parameter, so that the grouped
    # expression and the selected one are the same text (PostgreSQL compares them so).
    day = logs.c.created_at // sa.literal_column(str(SECONDS_PER_DAY), sa.BigInteger())
    model_name: sa.ColumnElement[str] = logs.c.model_name
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        model_name = model_name.collate("utf8mb4_bin")
    sums = (
        sa.select(
            logs.c.user_id,
            day,
            model_name,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(logs.c.quota), 0),
            sa.func.coalesce(sa.func.sum(logs.c.prompt_tokens), 0),
            sa.func.coalesce(sa.func.sum(logs.c.completion_tokens), 0),
        )
        .where(logs.c.type == CONSUME)
        .group_by(logs.c.user_id, day, model_name)
    )
    op.execute(
        daily.insert().from_select(
            [
                "user_id",
                "day",
                "model_name",
                "request_count",
                "quota",
                "prompt_tokens",
                "completion_tokens",
            ],
            sums,
        )
    )
