"""The exceptions of the database layer; the tree is drawn in `libs.common.db`'s docstring."""

from __future__ import annotations


class DbError(Exception):
    """Base of every error raised by `libs.common.db`. Messages never contain passwords."""


class DatabaseConfigError(DbError):
    """`SQL_DSN` / `LOG_SQL_DSN` (or a URL given in code) cannot be used."""


class DatabaseUnavailableError(DbError):
    """The database does not answer (`Database.ping`)."""


class MigrationError(DbError):
    """Alembic could not bring the schema to the requested revision."""


class SchemaNotReadyError(MigrationError):
    """The schema is not at this code's head revision (`wait_for_schema` gave up)."""


class SeedError(DbError):
    """The first-start data cannot be created from the given settings."""
