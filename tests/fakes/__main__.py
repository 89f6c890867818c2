"""Run one fake provider as a process: ``python -m tests.fakes --provider openai --port 8100``.

Prints ``FAKE_UPSTREAM_READY http://127.0.0.1:PORT`` once listening (``--port 0`` picks a
free port), then serves until SIGINT/SIGTERM. Scripting goes through ``/__fake__/rules``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from tests.fakes.runner import PROVIDERS, READY_PREFIX, FakeUpstream


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__)
    parser.add_argument("--provider", choices=PROVIDERS, default="openai")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keys", help="comma-separated accepted API keys (default: any)")
    parser.add_argument("--models", help="comma-separated known models (default: any)")
    parser.add_argument(
        "--fast", action="store_true", help="benchmark mode: no recording, pre-encoded replies"
    )
    parser.add_argument("--no-record", action="store_true", help="do not record requests")
    parser.add_argument("--uvloop", action="store_true", help="use uvloop when installed")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    fake = FakeUpstream(
        args.provider,
        keys=args.keys.split(",") if args.keys else None,
        models=args.models.split(",") if args.models else None,
        fast=args.fast,
        record=False if args.no_record else None,
        host=args.host,
        port=args.port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with fake:
        print(READY_PREFIX + fake.url, flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            uvloop.run(serve(args))
            return 0
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
