"""Several processes on one database: committed events cross over Redis (a real server)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.conftest import free_port
from tests.helpers import PHONE_NUMBER_ID, auth, create_inbox, create_user, eventually, settle
from tests.realtime.conftest import serving
from tests.realtime.sse import sse
from wadesk.audit.actions import Actor
from wadesk.conversations.actions import SendRequest, do_send_message
from wadesk.conversations.models import Conversation
from wadesk.db import queue_event
from wadesk.realtime.bus import bus
from wadesk.runtime import Runtime

REDIS = "redis://127.0.0.1:6379/15"


async def test_a_message_queued_by_a_server_wakes_a_separate_worker_at_once(settings, live):
    """The live server sends nothing itself; a second runtime (the 'worker process') does."""
    live.runtime.outbox.stop()  # this server process does not send
    await create_inbox(live)
    _, token = await create_user(live, email="a@example.com")
    await live.simulator.customer_sends(
        PHONE_NUMBER_ID, "5511912345678", "Ana", {"type": "text", "text": "oi"}
    )
    await settle(live)
    server_settings = settings.model_copy(update={"redis_url": REDIS})
    worker_settings = settings.model_copy(
        update={"redis_url": REDIS, "outbox_poll_seconds": 3600.0}
    )
    server = Runtime(server_settings, run_workers=False)
    worker = Runtime(worker_settings, run_workers=True)
    await server.start()
    await worker.start()
    await asyncio.sleep(0.3)  # subscriptions in place
    try:
        with bus.subscribe() as events:  # the bus of this test process, fed by every runtime
            conversation = (
                await live.client.get("/api/v1/conversations", headers=auth(token))
            ).json()["items"][0]
            # Queue the message through the 'server' runtime's own session.
            async with server.db.session() as session:
                row = await session.get(Conversation, conversation["id"])
                await do_send_message(
                    session,
                    actor=Actor.system(),
                    conversation=row,
                    request=SendRequest(type="text", text="from another process"),
                    service_window_hours=24,
                )
            # The worker polls once an hour: only the Redis wake-up can make it send now.
            await eventually(lambda: _sent(live), timeout=5)
            kinds = []
            while not events.empty():
                kinds.append(events.get_nowait()[0])
        assert "outbox.queued" in kinds
    finally:
        await worker.stop()
        await server.stop()


async def _sent(live) -> bool:
    return any(
        o["body"].get("text", {}).get("body") == "from another process"
        for o in live.simulator.outbound()
    )


# --- the event log across processes -------------------------------------------------------


class OwnRedis:
    """A redis-server of this test on a spare port, that the test may stop and start again
    (never the shared one on 6379)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    await client.ping()
                    return
                except RedisError:
                    await asyncio.sleep(0.05)
            raise AssertionError("redis-server did not start")
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
async def own_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing (apt-get install redis-server)")
    redis = OwnRedis(tmp_path)
    await redis.start()
    try:
        yield redis
    finally:
        redis.stop()


def _process_settings(settings, redis_url: str):
    port = free_port()
    return settings.model_copy(
        update={"redis_url": redis_url, "port": port, "base_url": f"http://127.0.0.1:{port}"}
    )


async def _commit_event(runtime: Runtime, contact_id: int) -> None:
    async with runtime.db.session() as session:
        queue_event(session, "contact.updated", {"contact_id": contact_id})


async def test_a_stream_in_one_process_sees_commits_of_another_and_survives_redis_going_away(
    settings, live, own_redis
):
    """Process A commits; a browser streams from process B. B's log tail polls once an hour
    at first: only the Redis notification can bring A's events at once. With Redis stopped, B
    falls back to a 1 s poll and loses nothing; when Redis is back, notifications resume."""
    _, token = await create_user(live, email="a@example.com")
    async with (
        serving(_process_settings(settings, own_redis.url)) as a,
        serving(_process_settings(settings, own_redis.url)) as b,
    ):
        feed = b.runtime.events
        feed.poll_seconds = 3600.0
        await eventually(lambda: _connected(a, b), timeout=10)
        await asyncio.sleep(0.3)  # subscriptions confirmed
        async with b.client() as http, sse(http, headers=auth(token)) as stream:
            await eventually(lambda: _true(feed.last is not None))
            await _commit_event(a.runtime, 1)
            [first] = await stream.events(1, timeout=5)
            assert first.data["payload"] == {"contact_id": 1}

            own_redis.stop()
            feed.poll_seconds = 1.0
            feed.wake()
            for contact_id in (2, 3, 4):
                await _commit_event(a.runtime, contact_id)  # commits go on without Redis
            got = await stream.events(3, timeout=10)
            assert [f.data["payload"]["contact_id"] for f in got] == [2, 3, 4]
            assert [f.id for f in got] == [first.id + 1, first.id + 2, first.id + 3]

            await own_redis.start()
            await eventually(lambda: _connected(a, b), timeout=15)
            await asyncio.sleep(0.3)
            feed.poll_seconds = 3600.0
            feed.wake()
            await asyncio.sleep(0.3)  # the feed is waiting again, for an hour
            await _commit_event(a.runtime, 5)
            [fifth] = await stream.events(1, timeout=5)
            assert (fifth.id, fifth.data["payload"]) == (first.id + 4, {"contact_id": 5})


async def _connected(*served) -> bool:
    return all(s.runtime.bridge is not None and s.runtime.bridge.connected for s in served)


async def _true(value: bool) -> bool:
    return value
