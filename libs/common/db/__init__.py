"""The database layer: models, engines and units of work, migrations, first-start seed.

    from libs.common.db import Database
    database = Database.from_settings(settings)       # SQL_DSN, LOG_SQL_DSN, SQL_MAX_*
    async with database.session() as session:        # commits on success, rolls back on error
        session.add(Token(...))
    async with database.log_session() as session:    # the database that holds `logs`
        ...

Schema changes only through `libs.common.db.migrations` (`upgrade`, `wait_for_schema`, ...);
`libs.common.db.seed.seed_first_start` creates root on an empty database.

Exceptions (every message is one line and never contains a password):

    DbError
     ├── DatabaseConfigError ........ SQL_DSN / LOG_SQL_DSN / a URL cannot be used
     ├── DatabaseUnavailableError ... ping: the database does not answer
     ├── MigrationError ............. Alembic could not reach the requested revision
     │    └── SchemaNotReadyError ... wait_for_schema: not at head in time, or unknown revision
     └── SeedError .................. INITIAL_ROOT_TOKEN / INITIAL_ROOT_ACCESS_TOKEN unusable

SQLAlchemy's own errors (IntegrityError, OperationalError, ...) pass through sessions unchanged.
"""

from __future__ import annotations

from libs.common.db import models
from libs.common.db.database import Database, PoolOptions
from libs.common.db.dsn import database_url, render_url
from libs.common.db.errors import (
    DatabaseConfigError,
    DatabaseUnavailableError,
    DbError,
    MigrationError,
    SchemaNotReadyError,
    SeedError,
)
from libs.common.db.models import (
    Ability,
    Base,
    Channel,
    ChannelStatus,
    Log,
    LogBase,
    LogType,
    Option,
    Redemption,
    RedemptionStatus,
    Token,
    TokenStatus,
    User,
    UserRole,
    UserStatus,
)

__all__ = [
    "Ability",
    "Base",
    "Channel",
    "ChannelStatus",
    "Database",
    "DatabaseConfigError",
    "DatabaseUnavailableError",
    "DbError",
    "Log",
    "LogBase",
    "LogType",
    "MigrationError",
    "Option",
    "PoolOptions",
    "Redemption",
    "RedemptionStatus",
    "SchemaNotReadyError",
    "SeedError",
    "Token",
    "TokenStatus",
    "User",
    "UserRole",
    "UserStatus",
    "database_url",
    "models",
    "render_url",
]
