"""The audit trail is a hash chain: edits and deletions are detected, named, and refused on
PostgreSQL; concurrent writers never fork it, and (PostgreSQL) never wait for one another."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from tests.helpers import SYSTEM, auth, create_user
from wadesk.audit.actions import Actor, record
from wadesk.audit.chain import GENESIS
from wadesk.audit.chainer import chain_pending
from wadesk.audit.models import AuditEvent
from wadesk.audit.queries import verify_chain


async def wadesk_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wadesk",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def write_events(live, n: int) -> list[int]:
    ids = []
    async with live.runtime.db.session() as session:
        for i in range(n):
            event = await record(
                session,
                SYSTEM,
                "test.event",
                "thing",
                i,
                {"n": i, "note": "é ✓", "nested": {"b": 1, "a": [1, 2]}},
            )
            ids.append(event.id)
    await chain_pending(live.runtime.db, live.runtime.settings.resolved_secret_key())
    return ids


async def tamper(live, backend: str, sql: str) -> None:
    """What someone with the database owner's rights could do (the trigger switched off)."""
    async with live.runtime.db.engine.begin() as conn:
        if backend == "postgresql":
            await conn.execute(
                text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
            )
        await conn.execute(text(sql))
        if backend == "postgresql":
            await conn.execute(
                text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
            )


async def test_rows_are_linked_and_verify_says_intact(live):
    ids = await write_events(live, 5)
    async with live.runtime.db.session() as session:
        rows = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
        result = await verify_chain(session, live.runtime.settings.resolved_secret_key())
    assert [r.id for r in rows] == ids
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert result.ok and result.checked == 5 and result.head == rows[-1].hash
    code, out, _ = await wadesk_cli("audit", "verify")
    assert code == 0 and "intact: 5 rows" in out and rows[-1].hash in out


async def test_an_edited_row_is_named_by_audit_verify(live, backend):
    ids = await write_events(live, 6)
    await tamper(live, backend, f"UPDATE audit_events SET ip = '10.9.9.9' WHERE id = {ids[3]}")
    code, _, err = await wadesk_cli("audit", "verify")
    assert code == 1
    assert f"broken at row {ids[3]}" in err and "content was changed" in err


async def test_a_deleted_row_breaks_the_link_of_the_next_one(live, backend):
    ids = await write_events(live, 6)
    await tamper(live, backend, f"DELETE FROM audit_events WHERE id = {ids[2]}")
    async with live.runtime.db.session() as session:
        result = await verify_chain(session, live.runtime.settings.resolved_secret_key())
    assert result.broken is not None and result.broken.row_id == ids[3]
    assert "removed" in result.broken.reason and result.checked == 2


async def test_a_rewritten_row_with_a_recomputed_plain_hash_is_still_caught(live, backend):
    """Without the secret key the attacker cannot compute the HMAC of the new content."""
    import hashlib

    ids = await write_events(live, 3)
    fake = hashlib.sha256(b"forged").hexdigest()
    await tamper(
        live,
        backend,
        f"UPDATE audit_events SET action = 'test.innocent', hash = '{fake}' WHERE id = {ids[1]}",
    )
    async with live.runtime.db.session() as session:
        result = await verify_chain(session, live.runtime.settings.resolved_secret_key())
    assert result.broken is not None and result.broken.row_id == ids[1]


async def test_postgresql_refuses_update_and_delete_of_audit_rows(live, backend):
    if backend != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's; SQLite is the single-laptop mode")
    ids = await write_events(live, 2)
    for sql in (
        f"UPDATE audit_events SET action = 'x' WHERE id = {ids[0]}",
        f"DELETE FROM audit_events WHERE id = {ids[0]}",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with live.runtime.db.engine.begin() as conn:
                await conn.execute(text(sql))
    async with live.runtime.db.session() as session:
        assert (
            await session.scalar(select(AuditEvent.action).where(AuditEvent.id == ids[0]))
            == "test.event"
        )


async def test_concurrent_writers_keep_one_chain(live):
    async def writer(n: int) -> None:
        async with live.runtime.db.session() as session:
            await record(session, Actor.system(f"w{n}"), "test.concurrent", None, None, {"n": n})
            await asyncio.sleep(0.01)  # hold the transaction open a little
            await record(session, Actor.system(f"w{n}"), "test.concurrent", None, None, {"n": n})

    await asyncio.gather(*(writer(n) for n in range(16)))
    await chain_pending(live.runtime.db, live.runtime.settings.resolved_secret_key())
    async with live.runtime.db.session() as session:
        rows = (await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
        result = await verify_chain(session, live.runtime.settings.resolved_secret_key())
    assert len(rows) == 32
    assert len({r.prev_hash for r in rows}) == 32  # no two rows claim the same predecessor
    assert result.ok and result.checked == 32


async def test_the_verify_api_and_page_report_the_break(live, backend):
    _, token = await create_user(live, email="boss@example.com", role="admin")
    ok = (await live.client.get("/api/v1/audit-events/verify", headers=auth(token))).json()
    assert ok["ok"] is True and ok["checked"] >= 2
    async with live.runtime.db.session() as session:
        first = await session.scalar(select(AuditEvent.id).order_by(AuditEvent.id))
    await tamper(live, backend, f"UPDATE audit_events SET details = '{{}}' WHERE id = {first}")
    broken = (await live.client.get("/api/v1/audit-events/verify", headers=auth(token))).json()
    assert broken["ok"] is False and broken["broken_row_id"] == first
    from tests.web.client import post_form, sign_in

    boss = await sign_in(live, "boss@example.com")
    page = await post_form(boss, "/admin/audit", "/admin/audit/verify", {})
    assert page.status_code == 200 and f'id="broken-row">{first}<' in page.text
    await boss.aclose()


def pg_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite links rows as they are written (one writer at a time)")


async def test_audited_transactions_do_not_wait_for_one_another(live, backend):
    """The reason rows are linked after commit: one long audited transaction (here held open
    on purpose) must not hold up every other audited change of the deployment."""
    pg_only(backend)
    held = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> None:
        async with live.runtime.db.session() as session:
            await record(session, Actor.system("slow"), "test.slow", None, None)
            held.set()
            await release.wait()

    task = asyncio.create_task(slow())
    await held.wait()
    async with asyncio.timeout(5):
        async with live.runtime.db.session() as session:
            fast = await record(session, Actor.system("fast"), "test.fast", None, None)
    key = live.runtime.settings.resolved_secret_key()
    await chain_pending(live.runtime.db, key)  # links what is committed: the fast one
    release.set()
    await task
    await chain_pending(live.runtime.db, key)
    async with live.runtime.db.session() as session:
        rows = (await session.scalars(select(AuditEvent).order_by(AuditEvent.chain_seq))).all()
        result = await verify_chain(session, key)
    # The chain follows commit order: the later id committed first and is linked first.
    assert [r.action for r in rows] == ["test.fast", "test.slow"]
    assert rows[0].id == fast.id and rows[1].id < fast.id
    assert result.ok and result.checked == 2 and result.unchained == 0


async def test_the_chainer_links_committed_rows_by_itself(live, backend):
    pg_only(backend)
    async with live.runtime.db.session() as session:
        event = await record(session, SYSTEM, "test.event", "thing", 1)
        assert event.hash is None and event.chain_seq is None  # unchained until commit
    for _ in range(100):  # the runtime's chainer runs every 0.2 s
        async with live.runtime.db.session() as session:
            row = await session.get(AuditEvent, event.id)
            if row is not None and row.hash is not None:
                break
        await asyncio.sleep(0.05)
    assert row is not None and row.chain_seq == 1 and row.prev_hash == GENESIS
    async with live.runtime.db.session() as session:
        assert (await verify_chain(session, live.runtime.settings.resolved_secret_key())).ok


async def test_the_trigger_lets_only_the_linking_through(live, backend):
    """The one UPDATE allowed: an unchained row getting its place, link and hash, nothing else
    changed. Re-linking, unlinking, or linking while changing the content is refused."""
    pg_only(backend)
    live.runtime.audit_chainer.stop()  # so the rows stay unchained for this test
    await asyncio.sleep(0.3)
    async with live.runtime.db.session() as session:
        first = (await record(session, SYSTEM, "test.event", "thing", 1)).id
        second = (await record(session, SYSTEM, "test.event", "thing", 2)).id
    link = "chain_seq = 1, prev_hash = repeat('0', 64), hash = repeat('a', 64)"
    for sql in (
        f"UPDATE audit_events SET {link}, action = 'test.other' WHERE id = {first}",
        f"UPDATE audit_events SET {link}, details = '{{\"x\": 1}}' WHERE id = {first}",
        f"UPDATE audit_events SET hash = repeat('a', 64) WHERE id = {first}",  # half a link
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with live.runtime.db.engine.begin() as conn:
                await conn.execute(text(sql))
    key = live.runtime.settings.resolved_secret_key()
    assert await chain_pending(live.runtime.db, key) == 2
    for sql in (
        f"UPDATE audit_events SET hash = repeat('b', 64) WHERE id = {second}",
        f"UPDATE audit_events SET chain_seq = NULL, prev_hash = NULL, hash = NULL"
        f" WHERE id = {second}",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with live.runtime.db.engine.begin() as conn:
                await conn.execute(text(sql))
    async with live.runtime.db.session() as session:
        result = await verify_chain(session, key)
    assert result.ok and result.checked == 2


async def test_a_row_moved_to_the_end_of_the_chain_is_caught(live, backend):
    """Someone with the owner's rights unlinks a row and edits it, hoping the chainer re-links
    it at the end: the gap it leaves in the sequence names the row after it."""
    pg_only(backend)
    ids = await write_events(live, 4)
    await tamper(
        live,
        backend,
        "UPDATE audit_events SET action = 'test.innocent', chain_seq = NULL, prev_hash = NULL,"
        f" hash = NULL WHERE id = {ids[1]}",
    )
    key = live.runtime.settings.resolved_secret_key()
    await chain_pending(live.runtime.db, key)
    async with live.runtime.db.session() as session:
        result = await verify_chain(session, key)
    assert result.broken is not None and result.broken.row_id == ids[2]
