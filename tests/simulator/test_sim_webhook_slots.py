"""The simulator's webhook sender bounds the requests it has in flight."""

from __future__ import annotations

import asyncio

import httpx
from aiohttp import web

from tests.helpers import local_http_server
from wadesk.channels.simulator.webhooks import post_with_retries


async def test_webhook_attempts_in_flight_never_exceed_the_slots() -> None:
    in_flight = peak = 0

    async def receive(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    slots = asyncio.Semaphore(4)
    async with local_http_server(app) as url, httpx.AsyncClient(timeout=5) as client:
        results = await asyncio.gather(
            *(
                post_with_retries(client, f"{url}/hook", b"{}", "secret", slots=slots)
                for _ in range(40)
            )
        )
    assert all(results)
    assert peak == 4
