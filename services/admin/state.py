"""What the admin's request handlers share: built once by the target, read through `deps`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from libs.common.bus import Bus
from libs.common.cache import Cache
from libs.common.db import Database
from libs.common.settings import Settings
from services.admin.security import SessionCodec


@dataclass
class AdminState:
    settings: Settings
    database: Database
    bus: Bus
    cache: Cache
    sessions: SessionCodec
    version: str
    start_time: int = field(default_factory=lambda: int(time.time()))
