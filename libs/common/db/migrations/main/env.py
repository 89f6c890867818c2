"""Alembic env.py of the "main" environment; the logic is shared in _environment.py."""

from __future__ import annotations

from libs.common.db.migrations._environment import run_environment

run_environment("main")
