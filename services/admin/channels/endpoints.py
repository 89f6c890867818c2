"""`/api/channels`: routes to be written."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["channels"])
