"""Developer tool: ``python -m libs.common.db.migrations revision "message" [--logs] [--dsn URL]``.

Autogenerates the next revision from the models (see the package docstring for the workflow).
Without ``--dsn`` the diff is taken against a scratch SQLite database migrated to head.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from libs.common.db.database import Database
from libs.common.db.dsn import database_url
from libs.common.db.errors import DbError
from libs.common.db.migrations import autogenerate_revision


async def _revision(message: str, environment: str, dsn: str) -> Path | None:
    with tempfile.TemporaryDirectory() as scratch:
        url = database_url(dsn, sqlite_file=Path(scratch) / "scratch.db")
        database = Database(url)
        try:
            return await autogenerate_revision(
                database, message, environment="logs" if environment == "logs" else "main"
            )
        finally:
            await database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m libs.common.db.migrations")
    commands = parser.add_subparsers(dest="command", required=True)
    revision = commands.add_parser("revision", help="autogenerate the next revision")
    revision.add_argument("message", help="what the revision does, e.g. 'add users.foo'")
    revision.add_argument("--logs", action="store_true", help="the logs environment")
    revision.add_argument(
        "--dsn", default="", help="diff against this database (default: a scratch SQLite file)"
    )
    args = parser.parse_args(argv)
    try:
        path = asyncio.run(_revision(args.message, "logs" if args.logs else "main", args.dsn))
    except DbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if path is None:
        print("the models and the migrations agree: no revision written")
    else:
        print(f"wrote {path}; review it, then run tests/libs/common/db/test_migrations.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
