"""Alembic environment "logs" (see libs.common.db.migrations)."""
