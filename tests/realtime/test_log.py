"""The event log: ids gap-free and visible in commit order. SQLite hands them out right before
the producing commit; PostgreSQL stages events and the sequencer gives ids after the commit."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.util import await_only

from wadesk.db import Database, queue_event
from wadesk.realtime.models import EventRecord
from wadesk.realtime.queries import current_event_id, events_after
from wadesk.realtime.sequencer import sequence_pending


async def _start(db: Database) -> int:
    async with db.session() as session:
        return await current_event_id(session)


async def _rows(db: Database, after: int) -> list[EventRecord]:
    if not db.is_sqlite:
        await sequence_pending(db)  # what the runtime's sequencer does within moments
    async with db.session() as session:
        return list(
            (
                await session.scalars(
                    select(EventRecord).where(EventRecord.id > after).order_by(EventRecord.id)
                )
            ).all()
        )


async def test_events_are_stored_with_ids_in_their_transaction_and_published_with_them(live):
    db = live.runtime.db
    start = await _start(db)
    published: list = []
    live.runtime.listeners.append(published.extend)
    async with db.session() as session:
        queue_event(session, "conversation.updated", {"conversation_id": 7, "inbox_id": 3})
        queue_event(session, "contact.updated", {"contact_id": 9, "tags": ("a", "b")})
    rows = await _rows(db, start)
    assert [(r.id, r.kind, r.inbox_id, r.conversation_id) for r in rows] == [
        (start + 1, "conversation.updated", 3, 7),
        (start + 2, "contact.updated", None, None),
    ]
    assert rows[1].payload == {"contact_id": 9, "tags": ["a", "b"]}  # stored as JSON
    assert [(e.kind, e.payload) for e in published] == [(r.kind, r.payload) for r in rows]
    # SQLite: published with their ids; PostgreSQL: at commit, before the sequencer gave them.
    assert [e.id for e in published] == ([r.id for r in rows] if db.is_sqlite else [None, None])
    kind, payload = published[0]  # listeners still unpack (kind, payload)
    assert (kind, payload) == ("conversation.updated", {"conversation_id": 7, "inbox_id": 3})
    async with db.session() as session:
        assert await current_event_id(session) == start + 2
        assert [e.id for e in await events_after(session, start + 1, 10)] == [start + 2]


async def test_wake_ups_reach_the_hooks_but_not_the_log(live):
    db = live.runtime.db
    start = await _start(db)
    published: list = []
    live.runtime.listeners.append(published.extend)
    woken: list[str] = []
    outbox_wake = live.runtime.outbox.wake
    live.runtime.outbox.wake = lambda: woken.append("outbox")  # type: ignore[method-assign]
    try:
        async with db.session() as session:
            queue_event(session, "outbox.queued", {"inbox_id": 3})
            queue_event(session, "message.created", {"message_id": 5, "inbox_id": 3})
            queue_event(session, "automation.queued", {"inbox_id": 3})
        async with db.session() as session:  # wake-ups alone: nothing is logged at all
            queue_event(session, "routing.drain_later", {})
    finally:
        live.runtime.outbox.wake = outbox_wake  # type: ignore[method-assign]
    rows = await _rows(db, start)
    assert [(r.id, r.kind) for r in rows] == [(start + 1, "message.created")]
    assert [e.kind for e in published] == [
        "outbox.queued",
        "message.created",
        "automation.queued",
        "routing.drain_later",
    ]
    expected_ids = [None, start + 1 if db.is_sqlite else None, None, None]
    assert [e.id for e in published] == expected_ids
    assert woken == ["outbox"]
    async with db.session() as session:
        assert await current_event_id(session) == start + 1


async def test_ids_stay_gap_free_when_transactions_roll_back_even_inside_the_commit(live):
    db = live.runtime.db
    start = await _start(db)
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            queue_event(session, "contact.updated", {"contact_id": 1})
            await session.flush()
            raise RuntimeError("the unit of work fails")

    def fail(session) -> None:
        if session.info.get("fail"):
            raise LookupError("the commit fails after the ids were taken")

    cls = _session_class(db)
    event.listen(cls, "before_commit", fail)
    try:
        with pytest.raises(LookupError):
            async with db.session() as session:
                session.sync_session.info["fail"] = True
                queue_event(session, "contact.updated", {"contact_id": 2})
    finally:
        event.remove(cls, "before_commit", fail)
    async with db.session() as session:
        async with session.begin_nested():
            queue_event(session, "contact.updated", {"contact_id": 3})
        # A released savepoint is not the commit: ids are handed out once, at the end.
        queue_event(session, "contact.updated", {"contact_id": 4})
        with pytest.raises(LookupError):
            async with session.begin_nested():
                queue_event(session, "contact.updated", {"contact_id": 5})
                raise LookupError("only this savepoint's events go")
        queue_event(session, "contact.updated", {"contact_id": 6})
    rows = await _rows(db, start)
    assert [(r.id, r.payload["contact_id"]) for r in rows] == [
        (start + 1, 3),
        (start + 2, 4),
        (start + 3, 6),
    ]
    assert await _start(db) == start + 3


async def test_the_counter_row_is_recreated_after_the_last_id_when_missing(live):
    """The test bed empties every table between tests; a partial restore might lose it too."""
    from wadesk.realtime.models import EventSequence

    db = live.runtime.db
    async with db.session() as session:
        queue_event(session, "contact.updated", {"contact_id": 4})
    await _rows(db, 0)
    before = await _start(db)
    async with db.session() as session:
        await session.execute(EventSequence.__table__.delete())
    assert await _start(db) == 0
    async with db.session() as session:
        queue_event(session, "contact.updated", {"contact_id": 5})
    rows = await _rows(db, 0)
    assert [r.payload["contact_id"] for r in rows][-2:] == [4, 5]
    assert rows[-1].id == before + 1 == await _start(db)


def _session_class(db: Database) -> type:
    return db.sessionmaker.kw["sync_session_class"]


async def test_a_later_writer_does_not_wait_and_ids_follow_commit_order(live, backend):
    """T1 staged its events but has not committed; T2 commits meanwhile and does not wait for
    T1 (no lock is shared). The sequencer gives T2's event the first id: a reader tailing
    ``id > last`` must never see an id that a later commit fills in below it."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: no interleaving to test")
    db = live.runtime.db
    start = await _start(db)
    gate = asyncio.Event()
    holding = asyncio.Event()

    def hold(session) -> None:
        if session.info.get("hold"):
            holding.set()
            await_only(gate.wait())  # events staged, COMMIT not sent yet

    cls = _session_class(db)
    event.listen(cls, "before_commit", hold)
    try:

        async def write(hold_it: bool, contact_id: int) -> None:
            async with db.session() as session:
                session.sync_session.info["hold"] = hold_it
                queue_event(session, "contact.updated", {"contact_id": contact_id})

        first = asyncio.create_task(write(True, 1))
        await holding.wait()
        await asyncio.wait_for(write(False, 2), timeout=5)  # does not queue behind T1
        assert [(r.id, r.payload["contact_id"]) for r in await _rows(db, start)] == [(start + 1, 2)]
        gate.set()
        await first
    finally:
        event.remove(cls, "before_commit", hold)
    rows = await _rows(db, start)
    assert [(r.id, r.payload["contact_id"]) for r in rows] == [(start + 1, 2), (start + 2, 1)]


async def test_a_tailing_reader_never_skips_an_id_under_concurrent_writers(live, backend):
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    db = live.runtime.db
    start = await _start(db)
    rng = random.Random(4)

    def dawdle(session) -> None:
        # The worst moment to be slow: events written, commit not yet done.
        if session.info.get("wadesk_events") and rng.random() < 0.5:
            await_only(asyncio.sleep(rng.random() * 0.004))

    cls = _session_class(db)
    event.listen(cls, "before_commit", dawdle)
    committed: list[int] = []
    done = asyncio.Event()

    async def writer(number: int) -> None:
        for round_ in range(25):
            try:
                async with db.session() as session:
                    for _ in range(rng.randint(1, 4)):
                        queue_event(session, "contact.updated", {"contact_id": number})
                    if rng.random() < 0.2:
                        raise LookupError("rolled back")
                committed.append(number)
            except LookupError:
                pass
            await asyncio.sleep(rng.random() * 0.002 if round_ % 3 else 0)

    seen: list[int] = []

    async def reader() -> None:
        last = start
        while True:
            finished = done.is_set()
            async with db.session() as session:
                batch = [e.id for e in await events_after(session, last, 1000)]
            if batch:
                seen.extend(batch)
                last = batch[-1]
            elif finished:
                return
            await asyncio.sleep(0)

    try:
        reading = asyncio.create_task(reader())
        await asyncio.gather(*(writer(n) for n in range(8)))
        await sequence_pending(db)  # what the runtime's sequencer does within moments
        done.set()
        await reading
    finally:
        event.remove(cls, "before_commit", dawdle)
    end = await _start(db)
    assert end - start > 300
    assert seen == list(range(start + 1, end + 1))  # every id, once, in order, none skipped


async def test_metrics_show_how_long_events_and_audit_rows_wait_for_their_loops(live, backend):
    """PostgreSQL's after-commit loops report the age of what waits for them: an age that
    keeps growing on /metrics means a loop is stuck."""
    if backend != "postgresql":
        pytest.skip("SQLite writes events and audit links in their own transaction")
    from wadesk.audit.actions import Actor, record
    from wadesk.audit.chainer import AuditChainer
    from wadesk.audit.models import AuditEvent
    from wadesk.metrics import AUDIT_UNCHAINED_SECONDS, EVENTS_WAITING_SECONDS
    from wadesk.realtime.sequencer import EventSequencer

    db = live.runtime.db
    live.runtime.sequencer.stop()
    live.runtime.audit_chainer.stop()
    await asyncio.sleep(0.4)  # their current rounds end
    async with db.session() as session:
        queue_event(session, "contact.updated", {"contact_id": 1})
        await record(session, Actor.system("test"), "test.event", None, None)
    await asyncio.sleep(0.2)
    key = live.runtime.settings.resolved_secret_key()
    sequencer, chainer = EventSequencer(db), AuditChainer(db, key)
    assert await sequencer.run_once() == 1
    # A round that links less than a full batch returns 0: the loop rests before the next.
    assert await chainer.run_once() == 0
    async with db.session() as session:
        unlinked = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.hash.is_(None))
        )
    assert unlinked == 0
    assert EVENTS_WAITING_SECONDS._value.get() >= 0.2
    assert AUDIT_UNCHAINED_SECONDS._value.get() >= 0.2
    assert await sequencer.run_once() == 0 and await chainer.run_once() == 0
    assert EVENTS_WAITING_SECONDS._value.get() == 0 == AUDIT_UNCHAINED_SECONDS._value.get()
    metrics = (await live.client.get("/metrics")).text
    assert "wadesk_events_staged_oldest_seconds 0.0" in metrics
    assert "wadesk_audit_unchained_oldest_seconds 0.0" in metrics
