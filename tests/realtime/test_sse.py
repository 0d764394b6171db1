"""GET /api/v1/events over real HTTP: order, resume exactly once, filtering, reset, shutdown."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import insert, text, update

from tests.helpers import (
    auth,
    create_inbox,
    create_user,
    envelope,
    logged_events,
    post_signed,
    text_message,
)
from tests.realtime.conftest import serving
from tests.realtime.sse import sse
from wadesk.db import queue_event, utcnow
from wadesk.realtime.api import MAX_BEHIND
from wadesk.realtime.bus import WAKE_UP_KINDS
from wadesk.realtime.models import EventRecord, StagedEvent
from wadesk.realtime.queries import current_event_id, events_after
from wadesk.realtime.retention import EventRetention
from wadesk.realtime.sequencer import sequence_pending

SECOND_NUMBER = "106540352242999"


def client(live) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=live.base_url, timeout=httpx.Timeout(10, read=60))


async def customer_writes(live, inbox, n: int, start: int = 0, wa_id: str = "5511987654321"):
    for i in range(start, start + n):
        response = await post_signed(
            live.client,
            inbox["webhook_url"],
            envelope(
                [text_message(wa_id, f"wamid.rt.{inbox['id']}.{wa_id}.{i}", f"msg {i}")],
                phone_number_id=inbox["phone_number_id"],
            ),
        )
        assert response.status_code == 200


async def logged(live, after: int = 0) -> list:
    await logged_events(live)
    async with live.runtime.db.session() as session:
        return await events_after(session, after, 100_000)


async def now_id(live) -> int:
    """The log's end, once what was committed is in it (PostgreSQL: sequenced)."""
    if not live.runtime.db.is_sqlite:
        await sequence_pending(live.runtime.db)
    async with live.runtime.db.session() as session:
        return await current_event_id(session)


async def test_events_arrive_in_order_and_a_reconnect_gets_exactly_what_it_missed(live):
    inbox = await create_inbox(live)
    _, token = await create_user(live, email="admin@example.com")
    async with client(live) as http:
        async with sse(http, headers=auth(token)) as stream:
            assert stream.response.headers["content-type"].startswith("text/event-stream")
            assert stream.response.headers["cache-control"] == "no-cache"
            assert stream.response.headers["x-accel-buffering"] == "no"
            await customer_writes(live, inbox, 3)
            # Three messages: three message.created, at least one conversation.created...
            first = await stream.events(3)
            while sum(f.event == "message.created" for f in first) < 3:
                first += await stream.events(1)
            assert stream.raw[0] == "retry: 1000"
        ids = [f.id for f in first]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        for frame in first:
            assert frame.data["id"] == frame.id and frame.data["kind"] == frame.event
            if frame.event.startswith(("message.", "conversation.")):
                assert frame.data["inbox_id"] == inbox["id"]
                assert frame.data["conversation_id"] == frame.data["payload"]["conversation_id"]
            assert set(frame.data) == {"id", "kind", "inbox_id", "conversation_id", "payload"}
        last = ids[-1]
        # Disconnected: more happens meanwhile.
        await customer_writes(live, inbox, 2, start=3)
        await _settled(live)
        missed = [e for e in await logged(live, last) if e.kind not in WAKE_UP_KINDS]
        assert sum(e.kind == "message.created" for e in missed) == 2
        for resume in (
            {"headers": {**auth(token), "Last-Event-ID": str(last)}},
            {"params": {"after": last}, "headers": auth(token)},
        ):
            async with sse(http, **resume) as stream:
                got = await stream.events(len(missed))
                await stream.nothing_more(1.0)
            assert [(f.id, f.event, f.data["payload"]) for f in got] == [
                (e.id, e.kind, e.payload) for e in missed
            ]
        # Without a resume point: from the current end, nothing old.
        async with sse(http, headers=auth(token)) as stream:
            await stream.nothing_more(1.0)


async def _settled(live) -> None:
    from tests.helpers import settle

    await settle(live)


async def test_people_get_only_the_events_of_inboxes_they_may_see(live):
    first = await create_inbox(live)
    second = await create_inbox(live, phone_number_id=SECOND_NUMBER)
    _, agent = await create_user(
        live, email="agent@example.com", role="agent", inbox_ids=(first["id"],)
    )
    _, admin = await create_user(live, email="admin@example.com")
    start = await now_id(live)
    await customer_writes(live, first, 2, wa_id="5511900000001")
    await customer_writes(live, second, 2, wa_id="5511900000002")
    await _settled(live)
    everything = await logged(live, start)
    assert {e.inbox_id for e in everything} >= {first["id"], second["id"]}
    assert any(e.inbox_id is None for e in everything)  # contact.created
    assert not any(e.kind in WAKE_UP_KINDS for e in everything)  # wake-ups are not logged
    for token, expected in (
        (agent, [e for e in everything if e.inbox_id == first["id"]]),
        (admin, everything),
    ):
        expected = [e for e in expected if e.kind not in WAKE_UP_KINDS]
        async with (
            client(live) as http,
            sse(http, params={"after": start}, headers=auth(token)) as s,
        ):
            got = await s.events(len(expected))
            await s.nothing_more(1.0)
        assert [f.id for f in got] == [e.id for e in expected]
    # An API token without the read scope gets nothing at all; nobody signed in neither.
    _, writer_only = await create_user(live, email="w@example.com", scopes=("write",))
    async with client(live) as http:
        assert (await http.get("/api/v1/events", headers=auth(writer_only))).status_code == 403
        assert (await http.get("/api/v1/events")).status_code == 401


async def test_a_client_too_far_behind_or_from_elsewhere_gets_one_reset(live):
    _, token = await create_user(live, email="admin@example.com")
    async with live.runtime.db.session() as session:
        for i in range(MAX_BEHIND + 2):
            queue_event(session, "contact.updated", {"contact_id": i})
    end = await now_id(live)
    async with client(live) as http:
        for resume in (
            {"params": {"after": 0}},
            {"headers": {"Last-Event-ID": str(end + 50)}},
            {"headers": {"Last-Event-ID": "not-a-number"}},
        ):
            headers = {**auth(token), **resume.get("headers", {})}
            async with sse(http, params=resume.get("params"), headers=headers) as stream:
                [reset] = await stream.take(1)
                assert (reset.event, reset.id, reset.data) == ("reset", end, {"id": end})
                async with live.runtime.db.session() as session:
                    queue_event(session, "contact.updated", {"contact_id": -1})
                [after] = await stream.events(1)
                assert (after.id, after.event) == (end + 1, "contact.updated")
            end += 1
        # Within reach: everything, no reset.
        async with sse(http, params={"after": end - 3}, headers=auth(token)) as stream:
            assert [f.id for f in await stream.events(3)] == [end - 2, end - 1, end]


async def test_retention_deletes_old_events_in_batches_and_late_clients_reset(live):
    _, token = await create_user(live, email="admin@example.com")
    async with live.runtime.db.session() as session:
        for i in range(5):
            queue_event(session, "contact.updated", {"contact_id": i})
    async with live.runtime.db.session() as session:
        queue_event(session, "contact.updated", {"contact_id": 99})
    end = await now_id(live)
    async with live.runtime.db.session() as session:
        await session.execute(
            update(EventRecord)
            .where(EventRecord.id <= end - 1)
            .values(created_at=utcnow() - timedelta(hours=49))
        )
    retention = EventRetention(live.runtime.db, retention_hours=48, batch=2)
    assert [await retention.run_once() for _ in range(4)] == [2, 2, 1, 0]
    assert [e.id for e in await logged(live)] == [end]
    async with client(live) as http:
        async with sse(http, params={"after": end - 3}, headers=auth(token)) as stream:
            [reset] = await stream.take(1)
            assert (reset.event, reset.id) == ("reset", end)
        async with sse(http, params={"after": end - 1}, headers=auth(token)) as stream:
            [kept] = await stream.events(1)
            assert kept.id == end


async def test_streams_end_when_the_client_leaves_and_when_the_server_shuts_down(settings, live):
    """Served by a second app on its own port (the live one stays up): its shutdown must not
    wait for the open streams."""
    _, token = await create_user(live, email="admin@example.com")
    async with client(live) as http:
        async with sse(http, headers=auth(token)):
            feed = live.runtime.events
            await asyncio.sleep(0.2)
            assert feed._subscribers == 1
        for _ in range(100):
            if feed._subscribers == 0:
                break
            await asyncio.sleep(0.05)
        assert feed._subscribers == 0

    from tests.conftest import free_port

    port = free_port()
    other = settings.model_copy(update={"port": port, "base_url": f"http://127.0.0.1:{port}"})
    async with (
        serving(other) as served,
        served.client() as http,
        sse(http, headers=auth(token)) as first,
        sse(http, headers=auth(token)) as second,
    ):
        await asyncio.sleep(0.3)
        await served.shutdown(timeout=10)  # hangs without the shutdown watch
        await asyncio.wait_for(first.ended.wait(), 5)
        await asyncio.wait_for(second.ended.wait(), 5)
    # The live server on another port was not told to stop: its streams go on.
    async with client(live) as http, sse(http, headers=auth(token)) as stream:
        async with live.runtime.db.session() as session:
            queue_event(session, "contact.updated", {"contact_id": 1})
        assert len(await stream.events(1)) == 1


async def test_filtered_out_events_move_the_resume_point_with_cursor_frames(live, monkeypatch):
    inbox = await create_inbox(live)
    _, agent = await create_user(live, email="agent@example.com", role="agent")
    monkeypatch.setattr("wadesk.realtime.api.CURSOR_EVERY", 3)
    async with client(live) as http, sse(http, headers=auth(agent)) as stream:
        async with live.runtime.db.session() as session:
            for i in range(4):  # not a member of this inbox: not for this agent
                queue_event(session, "conversation.updated", {"inbox_id": inbox["id"], "i": i})
        [cursor] = await stream.take(1)
        assert cursor.event == "cursor" and cursor.id == cursor.data["id"] == await now_id(live)


@pytest.mark.parametrize("kind", sorted(WAKE_UP_KINDS))
async def test_internal_wake_ups_are_neither_logged_nor_streamed(live, kind):
    _, admin = await create_user(live, email="admin@example.com")
    async with client(live) as http, sse(http, headers=auth(admin)) as stream:
        async with live.runtime.db.session() as session:
            queue_event(session, kind, {"inbox_id": None, "count": 1})
            queue_event(session, "contact.updated", {"contact_id": 1})
        [frame] = await stream.events(1)
        assert frame.event == "contact.updated"
        # A log written before wake-ups stopped being logged may still hold some.
        await _log_directly(live, kind)
        async with live.runtime.db.session() as session:
            queue_event(session, "contact.updated", {"contact_id": 2})
        [frame] = await stream.events(1)
        assert frame.data["payload"] == {"contact_id": 2}
    kinds = [e.kind for e in await logged(live)]
    assert kinds[-3:] == ["contact.updated", kind, "contact.updated"]
    assert kinds.count(kind) == 1


async def _log_directly(live, kind: str) -> None:
    """An event row as the log held wake-ups before (not through queue_event)."""
    db = live.runtime.db
    row = {"kind": kind, "payload": {}, "created_at": utcnow()}
    async with db.session() as session:
        if db.is_sqlite:
            last = await session.scalar(
                text("UPDATE event_sequence SET last = last + 1 WHERE id = 1 RETURNING last")
            )
            await session.execute(insert(EventRecord).values(id=last, **row))
        else:
            await session.execute(insert(StagedEvent).values(**row))
    if not db.is_sqlite:
        await sequence_pending(db)


async def test_heartbeats_keep_an_idle_stream_alive_and_old_streams_end(live, monkeypatch):
    _, admin = await create_user(live, email="admin@example.com")
    monkeypatch.setattr("wadesk.realtime.api.HEARTBEAT_SECONDS", 0.3)
    monkeypatch.setattr("wadesk.realtime.api.MAX_STREAM_SECONDS", 2.0)
    async with client(live) as http, sse(http, headers=auth(admin)) as stream:
        await asyncio.sleep(1.0)
        assert stream.raw.count(": ping") >= 2
        assert not stream.ended.is_set()
        # After MAX_STREAM_SECONDS the server ends it; EventSource reconnects with its id.
        await asyncio.wait_for(stream.ended.wait(), 5)
