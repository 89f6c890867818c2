"""The ceiling for the relay benchmark: an aiohttp pass-through proxy with no auth or accounting.

python -m bench.minimal_proxy --upstream http://127.0.0.1:PORT --port N
"""

from __future__ import annotations

import argparse

import aiohttp
import uvloop
from aiohttp import web


def create_app(upstream: str) -> web.Application:
    async def start(app: web.Application) -> None:
        app["http"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def stop(app: web.Application) -> None:
        await app["http"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        http: aiohttp.ClientSession = request.app["http"]
        async with http.post(
            upstream + request.path,
            data=body,
            headers={"Content-Type": "application/json", "Authorization": "Bearer sk-upstream"},
        ) as answer:
            response = web.StreamResponse(
                status=answer.status,
                headers={"Content-Type": answer.headers.get("Content-Type", "application/json")},
            )
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", forward)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(
        create_app(args.upstream),
        host="127.0.0.1",
        port=args.port,
        print=None,
        loop=uvloop.new_event_loop(),
        access_log=None,
    )


if __name__ == "__main__":
    main()
