"""Alembic environment "main" (see libs.common.db.migrations)."""
