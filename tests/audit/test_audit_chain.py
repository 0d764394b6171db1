"""The audit trail is a hash chain: edits and deletions are detected, named, and refused on
PostgreSQL; concurrent writers never fork it."""

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
