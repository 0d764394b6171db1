"""A real HTTP server per test: the simulator mounted at /simulator, next to a receiver app
that plays wadesk's webhook endpoint, records deliveries and checks their signatures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from wadesk.channels.simulator.app import BusinessNumber, Simulator, create_simulator_app

APP_SECRET = "test-app-secret"
TOKEN = "test-token"
VERSION = "v21.0"


@dataclass
class Receiver:
    """wadesk's webhook endpoint as tests need it: answers from a script, 200 otherwise."""

    secret: str
    answers: list[int] = field(default_factory=list)  # status codes for the next attempts
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # accepted bodies
    attempts: int = 0
    bad_signatures: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            given = request.headers.get("x-hub-signature-256", "")
            self.attempts += 1
            if not hmac.compare_digest(expected, given):
                self.bad_signatures += 1
                return Response(status_code=401)
            status = self.answers.pop(0) if self.answers else 200
            if status == 200:
                self.deliveries.append(orjson.loads(body))
            return Response(status_code=status)

        return app

    def values(self) -> list[dict[str, Any]]:
        return [
            change["value"]
            for delivery in self.deliveries
            for entry in delivery["entry"]
            for change in entry["changes"]
        ]

    def statuses(self, wamid: str | None = None) -> list[dict[str, Any]]:
        return [
            status
            for value in self.values()
            for status in value.get("statuses", [])
            if wamid is None or status["id"] == wamid
        ]

    def status_names(self, wamid: str) -> list[str]:
        return [status["status"] for status in self.statuses(wamid)]

    def messages(self) -> list[dict[str, Any]]:
        return [message for value in self.values() for message in value.get("messages", [])]


async def wait_until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@dataclass
class Harness:
    sim: Simulator
    receiver: Receiver
    base: str  # where the simulator is mounted
    client: httpx.AsyncClient
    number: BusinessNumber

    @property
    def graph(self) -> str:
        return f"{self.base}/graph/{VERSION}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    async def send(self, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        url = f"{self.graph}/{self.number.phone_number_id}/messages"
        return await self.client.post(url, json=body, headers=self.auth, **kwargs)

    async def send_text(self, to: str = "5511987654321", text: str = "hello") -> httpx.Response:
        return await self.send(
            {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": text}}
        )


@pytest.fixture
def sim_options() -> dict[str, Any]:
    """Override in a test module to tune the simulator."""
    return {}


class Swappable:
    """An ASGI app that forwards to whichever app the current test installed."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@dataclass
class Server:
    root: str
    simulator: Swappable
    receiver: Swappable
    client: httpx.AsyncClient  # shared: building a client (its TLS context) is slow


@pytest.fixture(scope="session")
async def server() -> AsyncIterator[Server]:
    """One uvicorn for the whole session; each test mounts a fresh simulator and receiver."""
    simulator, receiver = Swappable(), Swappable()
    parent = FastAPI()
    parent.mount("/simulator", simulator)
    parent.mount("/receiver", receiver)
    config = uvicorn.Config(
        parent,
        host="127.0.0.1",
        port=0,  # any free port, read back below
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    await wait_until(lambda: uv.started, timeout=5)
    port = uv.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient(timeout=5) as client:
        yield Server(f"http://127.0.0.1:{port}", simulator, receiver, client)
    uv.should_exit = True
    await task


@pytest.fixture
async def harness(server: Server, sim_options: dict[str, Any]) -> AsyncIterator[Harness]:
    options: dict[str, Any] = {
        "auto_read_seconds": 0.05,
        "status_delay_seconds": 0.01,
        "template_review_seconds": 0.05,
        "webhook_retry_delays": (0.01, 0.02, 0.05),
        "webhook_retry_budget_seconds": 0.5,
        **sim_options,
    }
    sim = Simulator(public_url=f"{server.root}/simulator", http=server.client, **options)
    receiver = Receiver(APP_SECRET)
    number = BusinessNumber(
        phone_number_id="106540352242922",
        display_phone_number="15550783881",
        waba_id="102290129340398",
        access_token=TOKEN,
        app_secret=APP_SECRET,
        webhook_url=f"{server.root}/receiver/hook",
    )
    sim.register_number(number)
    server.simulator.app = create_simulator_app(sim)
    server.receiver.app = receiver.app()
    yield Harness(sim, receiver, f"{server.root}/simulator", server.client, number)
    await sim.aclose()
