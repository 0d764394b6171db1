"""Graceful shutdown of real processes: SIGTERM lets claimed sends finish, then exits 0.

`wadesk worker` runs as a separate process against the test database and sends through the
simulator of an in-process wadesk (whose own outbox worker is off). The simulator answers
each send only after a second, so SIGTERM arrives while sends are claimed and in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import free_port
from tests.helpers import (
    auth,
    create_inbox,
    create_user,
    envelope,
    eventually,
    post_signed,
    text_message,
)
from wadesk.channels.simulator.faults import FaultPlan
from wadesk.conversations.models import Conversation, Message
from wadesk.outbox.models import OutboxItem

WADESK = str(Path(sys.executable).with_name("wadesk"))
MESSAGES = 10
SEND_SECONDS = 0.8  # each send is answered this late (well within the client's timeout)


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    from wadesk.config import Settings

    port = free_port()
    return Settings(
        var_dir=tmp_path / "var",
        port=port,
        base_url=f"http://127.0.0.1:{port}",
        run_worker_in_server=False,  # the worker process below does the sending
        outbox_poll_seconds=0.2,
        ingest_sweep_seconds=2.0,
    )


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        WADESK_VAR_DIR=str(tmp_path / "var"),
        WADESK_SIMULATOR_ENABLED="0",
        WADESK_OUTBOX_POLL_SECONDS="0.2",
        WADESK_GRAPH_TIMEOUT_SECONDS="10",
        WADESK_LOG_LEVEL="WARNING",
        **extra,
    )
    return env


async def _counts(live: Any) -> tuple[int, int, int]:
    """(outbound messages sent, outbox rows claimed now, outbox rows pending)."""
    async with live.runtime.db.session() as session:
        sent = await session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.status.in_(("sent", "delivered", "read")), Message.direction == "out")
        )
        claimed = await session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.state == "pending", OutboxItem.lease_owner.is_not(None))
        )
        pending = await session.scalar(
            select(func.count()).select_from(OutboxItem).where(OutboxItem.state == "pending")
        )
    return int(sent or 0), int(claimed or 0), int(pending or 0)


async def _wait_exit(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    for _ in range(int(timeout * 10)):
        if process.poll() is not None:
            return process.returncode
        await asyncio.sleep(0.1)
    return None


async def test_sigterm_finishes_claimed_sends_then_exits_0(live: Any, tmp_path: Path) -> None:
    inbox = await create_inbox(live)
    _, token = await create_user(live, email="ops@example.com")
    customer = "447700900123"
    response = await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope([text_message(customer, "wamid.shutdown.in", "hello")]),
    )
    assert response.status_code == 200

    async def conversation() -> int | None:
        await live.runtime.processor.process_available()
        async with live.runtime.db.session() as session:
            return await session.scalar(select(Conversation.id))

    conversation_id = await eventually(conversation, timeout=30)
    for index in range(MESSAGES):
        response = await live.client.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"type": "text", "text": f"reply {index}"},
            headers=auth(token),
        )
        assert response.status_code == 201, response.text
    live.simulator.set_faults(
        FaultPlan(timeout=1.0, timeout_seconds=SEND_SECONDS, timeout_accepts=True)
    )

    worker = subprocess.Popen(
        [WADESK, "worker"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # Wait until the worker has claimed the sends and the first went out.
        for _ in range(600):
            sent, claimed, _pending = await _counts(live)
            if sent >= 1 and claimed >= 1:
                break
            assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
            await asyncio.sleep(0.1)
        else:
            os.killpg(worker.pid, signal.SIGKILL)
            out = worker.stdout.read().decode(errors="replace") if worker.stdout else ""
            async with live.runtime.db.session() as session:
                rows = (await session.execute(select(Message.status, Message.error_title))).all()
                items = (
                    await session.execute(select(OutboxItem.state, OutboxItem.last_error))
                ).all()
            pytest.fail(f"never claimed and sent {await _counts(live)} {rows} {items}: {out}")
        sent_before, claimed_at_signal, _ = await _counts(live)
        assert claimed_at_signal >= 1  # SIGTERM lands while sends are claimed
        worker.send_signal(signal.SIGTERM)
        code = await _wait_exit(worker, 40)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    output = worker.stdout.read().decode(errors="replace") if worker.stdout else ""
    assert code == 0, output
    sent, claimed, pending = await _counts(live)
    assert claimed == 0, "a send was left claimed"
    # The worker claimed all the messages in one batch (they were queued before it started):
    # every claimed send was finished, none handed back or left to the lease.
    assert sent_before < MESSAGES
    assert (sent, pending) == (MESSAGES, 0)
    accepted = len([m for m in live.simulator.messages.values() if m.sender == "business"])
    assert accepted == sent, "the simulator accepted a send that is not marked sent"


async def test_sigterm_stops_wadesk_serve_with_exit_0(live: Any, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [WADESK, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(tmp_path, WADESK_PORT=str(port), WADESK_RUN_WORKER_IN_SERVER="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            for _ in range(600):
                try:
                    ready = await client.get("/readyz")
                    if ready.status_code == 200:
                        assert "server" not in ready.headers  # no fingerprint (cli.serve)
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                await asyncio.sleep(0.1)
            else:
                pytest.fail("wadesk serve did not become ready")
            server.send_signal(signal.SIGTERM)
            code = await _wait_exit(server, 40)
            with pytest.raises(httpx.TransportError):
                await client.get("/readyz")  # it no longer accepts
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    output = server.stdout.read().decode(errors="replace") if server.stdout else ""
    assert code == 0, output
