"""Creating and dropping test databases on the real servers (PostgreSQL, MariaDB/MySQL)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


def postgres_execute(server: str, sql: str) -> None:
    """Run one statement on the PostgreSQL server `server` (an asyncpg URL) outside a
    transaction (CREATE/DROP DATABASE cannot run inside one)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def mysql_execute(server: str, sql: str) -> None:
    """Run one statement on the MariaDB/MySQL server `server` (a mysql:// URL)."""
    import pymysql

    parts = urlsplit(server)
    conn = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def create_postgres_database(server: str, name: str) -> str:
    """A new, empty PostgreSQL database; returns its SQLAlchemy URL."""
    postgres_execute(server, f'CREATE DATABASE "{name}"')
    return f"postgresql+asyncpg://{urlsplit(server).netloc}/{name}"


def drop_postgres_database(server: str, name: str) -> None:
    postgres_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_mysql_database(server: str, name: str) -> str:
    """A new, empty utf8mb4 MariaDB/MySQL database; returns its SQLAlchemy URL."""
    mysql_execute(
        server, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )
    return f"mysql+aiomysql://{urlsplit(server).netloc}/{name}?charset=utf8mb4"


def drop_mysql_database(server: str, name: str) -> None:
    mysql_execute(server, f"DROP DATABASE IF EXISTS `{name}`")
