"""Helpers for the realtime tests: a wadesk app on its own uvicorn, shut down on demand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn


@dataclass
class Served:
    app: Any
    runtime: Any
    server: uvicorn.Server
    task: asyncio.Task[None]
    base_url: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(10, read=60))

    async def shutdown(self, timeout: float = 15.0) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(asyncio.shield(self.task), timeout)


@asynccontextmanager
async def serving(settings: Any) -> AsyncIterator[Served]:
    """create_app(settings) on settings.port, like the ``live`` fixture, without emptying the
    database (several of these may share one)."""
    from wadesk.app import create_app

    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    served = Served(app, app.state.runtime, server, task, f"http://127.0.0.1:{settings.port}")
    try:
        yield served
    finally:
        if not task.done():
            server.should_exit = True
            await asyncio.wait_for(task, 30)
