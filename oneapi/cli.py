"""The `oneapi` command.

oneapi [--port N] [--log-dir DIR]           run target "all" (One API's flags)
oneapi run [--target relay,billing] [...]   run the given targets in this process
oneapi list-targets                         the targets and what each depends on
oneapi migrate [--revision REV]             bring the schema to REV (default: head)
oneapi migrate --downgrade REV              take the schema back to REV ("base": empty)
oneapi --version | --help
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oneapi import __version__

if TYPE_CHECKING:
    from libs.common.settings import Settings

# The heavy imports (database, bus, web frameworks) happen inside the commands that need them,
# so `oneapi --version` and `--help` answer at once.

logger = logging.getLogger("oneapi")


def _process_flags() -> argparse.ArgumentParser:
    # SUPPRESS: a flag given before the command (`oneapi --port 1 run`) is not reset by the
    # command's own default.
    flags = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    flags.add_argument("--port", type=int, help="HTTP port (PORT, default 3000)")
    flags.add_argument("--log-dir", type=Path, help="also write logs to files in DIR (LOG_DIR)")
    flags.add_argument("--data-dir", type=Path, help="SQLite file and NATS store (DATA_DIR)")
    return flags


def _run_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    flags.add_argument("--target", help="comma-separated targets (TARGET, default all)")
    return flags


def build_parser() -> argparse.ArgumentParser:
    process, run_flags = _process_flags(), _run_flags()
    parser = argparse.ArgumentParser(
        prog="oneapi",
        description="LLM API gateway: OpenAI-compatible keys over many providers.",
        parents=[process, run_flags],
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", parents=[process, run_flags], help="run targets (default: all)")
    commands.add_parser("list-targets", help="list the targets and their dependencies")
    migrate = commands.add_parser("migrate", parents=[process], help="apply schema migrations")
    direction = migrate.add_mutually_exclusive_group()
    direction.add_argument("--revision", default="head", help="upgrade to REV (default head)")
    direction.add_argument("--downgrade", metavar="REV", help="downgrade to REV (base = empty)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    from libs.common.settings import load_settings

    overrides: dict[str, Any] = {}
    for flag in ("port", "log_dir", "data_dir", "target"):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[flag] = value
    return load_settings(**overrides)


def _run_async(main: Coroutine[Any, Any, int]) -> int:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _list_targets() -> int:
    from oneapi.targets import build_registry

    registry = build_registry()
    for spec in registry.targets():
        modules = " -> ".join(s.name for s in registry.resolve([spec.name]))
        print(f"{spec.name:<8} {spec.description}\n         starts: {modules}")
    return 0


async def _migrate(settings: Settings, revision: str, downgrade: str | None) -> int:
    from libs.common.db import Database
    from libs.common.db.migrations import downgrade as migrate_down
    from libs.common.db.migrations import upgrade as migrate_up

    database = Database.from_settings(settings)
    try:
        if downgrade is not None:
            await migrate_down(database, downgrade)
            logger.info("schema downgraded to %s", downgrade)
        else:
            await migrate_up(database, revision)
            logger.info("schema upgraded to %s", revision)
    finally:
        await database.dispose()
    return 0


async def _serve(settings: Settings) -> int:
    from libs.common.runtime import Runtime
    from oneapi.targets import build_registry

    runtime = Runtime(settings, build_registry(), settings.target, version=__version__)
    logger.info("oneapi %s starting %s", __version__, " -> ".join(runtime.plan))
    return await runtime.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list-targets":
        return _list_targets()

    from libs.common.runtime import ModuleGraphError
    from libs.common.settings import SettingsError
    from libs.common.telemetry import configure_logging
    from oneapi.targets import build_registry

    try:
        settings = _settings(args)
        if args.command == "migrate":
            configure_logging(settings)
            return _run_async(_migrate(settings, args.revision, args.downgrade))
        build_registry().resolve(settings.target)  # an unknown target fails before any work
    except (SettingsError, ModuleGraphError) as exc:
        print(f"oneapi: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    return _run_async(_serve(settings))


if __name__ == "__main__":
    sys.exit(main())
