"""Process logging: stderr always, plus a file in LOG_DIR when it is set (One API's --log-dir)."""

from __future__ import annotations

import logging
import sys
import time

from libs.common.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """Set up the root logger once per process; library loggers propagate to it."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        path = settings.log_dir / f"oneapi-{time.strftime('%Y%m%d%H%M%S')}.log"
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format=LOG_FORMAT,
        handlers=handlers,
        force=True,
    )
    # Their INFO lines are per-connection noise; warnings still show.
    for noisy in ("uvicorn.error", "nats", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if settings.debug_sql:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
