"""Acceptance first under overload (wadesk.ingest.pressure, ADR 0006): while webhooks pile up
and processing is behind, processing runs one batch per MAX_DEFER_SECONDS; a pile-up in one
process is announced (PostgreSQL) to the processors of every other."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from tests.helpers import (
    create_inbox,
    envelope,
    pending_deliveries,
    post_signed,
    settle,
    text_message,
)
from wadesk.ingest import pressure as pressure_module
from wadesk.ingest import processor as processor_module
from wadesk.ingest.models import WebhookDelivery
from wadesk.ingest.pressure import (
    MIN_FLUSHES,
    PILE_UP_ROWS,
    WINDOW_SECONDS,
    IngestPressure,
    PileUpWatch,
)


def _stepped_aside(loop: str) -> float:
    value = REGISTRY.get_sample_value("wadesk_stepped_aside_seconds_total", {"loop": loop})
    return value or 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_pile_up_is_many_flushes_of_many_rows_and_ends_with_them():
    clock = Clock()
    pressure = IngestPressure(clock)
    assert not pressure.piling_up()
    # An ordinary rate: many flushes of one or two rows each.
    for _ in range(200):
        pressure.flushed(2)
    assert not pressure.piling_up()
    # A few big flushes alone are not enough: too quiet to call.
    clock.now += 2.5 * WINDOW_SECONDS
    for _ in range(MIN_FLUSHES - 1):
        pressure.flushed(50)
    assert not pressure.piling_up()
    # Webhooks arriving faster than one flush clears them.
    for _ in range(MIN_FLUSHES * 3):
        pressure.flushed(int(PILE_UP_ROWS) + 4)
    assert pressure.piling_up()
    clock.now += WINDOW_SECONDS  # the last window still counts
    assert pressure.piling_up()
    clock.now += 2 * WINDOW_SECONDS  # then nothing more came
    assert not pressure.piling_up()


async def test_a_processor_behind_a_pile_up_runs_one_batch_per_deferral(live, monkeypatch):
    """Five deliveries, batches of two, the pile-up forced: the batches come a deferral apart;
    without it, back to back. Nothing is skipped either way."""
    inbox = await create_inbox(live)
    processor = live.runtime.processor
    processor.stop()  # the test drives the rounds
    await asyncio.sleep(0.1)
    monkeypatch.setattr(pressure_module, "MAX_DEFER_SECONDS", 0.3)
    monkeypatch.setattr(processor, "_batch_size", 2)
    starts: list[float] = []
    real_batch = processor.process_batch

    async def timed_batch() -> Any:
        starts.append(time.monotonic())
        return await real_batch()

    monkeypatch.setattr(processor, "process_batch", timed_batch)
    monkeypatch.setattr(processor, "_stopping", False)

    async def post_five(tag: str) -> None:
        for i in range(5):
            message = text_message(f"5511988{i:06d}", f"wamid.{tag}{i}", "hi")
            response = await post_signed(live.client, inbox["webhook_url"], envelope([message]))
            assert response.status_code == 200

    await post_five("P")
    monkeypatch.setattr(live.runtime.ingest_pressure, "piling_up", lambda: True)
    waited_before = _stepped_aside("ingest")
    outcome = await processor.process_available()
    assert outcome.deliveries == 5
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 2 and all(gap >= 0.3 for gap in gaps)
    # Operators see it: the seconds waited, by loop.
    assert _stepped_aside("ingest") - waited_before >= 0.4

    starts.clear()
    # Quiet again before the next webhooks: a flush during a pile-up would announce it to
    # every processor (this one too) for a window.
    monkeypatch.setattr(live.runtime.ingest_pressure, "piling_up", lambda: False)
    await post_five("Q")
    outcome = await processor.process_available()
    assert outcome.deliveries == 5
    assert all(b - a < 0.3 for a, b in itertools.pairwise(starts))
    assert await pending_deliveries(live) == 0


async def test_a_pile_up_is_announced_to_every_process_and_withdrawn_after(
    live, backend, monkeypatch
):
    """PostgreSQL: the writer holds the shared pile-up lock on its own connection while its
    webhooks pile up; any process can see it in pg_locks; it goes when the pile-up does."""
    if backend == "sqlite":
        pytest.skip("one process on SQLite: its own pile-up is all there is")
    inbox = await create_inbox(live)
    piling = {"now": True}
    monkeypatch.setattr(live.runtime.ingest_pressure, "piling_up", lambda: piling["now"])

    async def announced() -> bool:
        # A watch of its own each time: nothing of this process's pressure, no cached answer.
        return await PileUpWatch(live.runtime.db, IngestPressure()).piling_up()

    message = text_message("5511977000001", "wamid.PILE1", "hi")
    await post_signed(live.client, inbox["webhook_url"], envelope([message]))
    for _ in range(100):
        if await announced():
            break
        await asyncio.sleep(0.02)
    assert await announced()
    # Another process's processor sees it (its own pressure says nothing).
    other = processor_module.DeliveryProcessor(live.runtime.db, live.runtime.registry)
    assert not other.watch.pressure.piling_up()
    assert await other.watch.piling_up()
    piling["now"] = False
    for _ in range(100):
        if not await announced():
            break
        await asyncio.sleep(0.02)
    assert not await announced()
    await settle(live)


async def test_the_writer_survives_losing_its_connection(live, backend):
    """PostgreSQL: the writer's own connection killed under it: the webhook in flight gets a
    503 (Meta sends it again), the next one opens a new connection and is stored."""
    if backend == "sqlite":
        pytest.skip("the writer uses the session's connection on SQLite")
    inbox = await create_inbox(live)
    first = text_message("5511966000001", "wamid.CONN1", "hello")
    assert (
        await post_signed(live.client, inbox["webhook_url"], envelope([first]))
    ).status_code == 200
    async with live.runtime.db.session() as session:
        killed = await session.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND query LIKE '%unnest%'"
            )
        )
    assert killed == 1
    second = text_message("5511966000002", "wamid.CONN2", "again")
    answers = [
        (await post_signed(live.client, inbox["webhook_url"], envelope([second]))).status_code
        for _ in range(2)
    ]
    assert answers in ([503, 200], [200, 200])
    await settle(live)
    async with live.runtime.db.session() as session:
        stored = await session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert stored == 1 + answers.count(200)


async def test_an_unexpected_failure_on_the_fast_path_is_a_json_500(live, monkeypatch):
    inbox = await create_inbox(live)

    async def broken(**_: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(live.runtime.writer, "store", broken)
    message = text_message("5511955000001", "wamid.BUG1", "hi")
    response = await post_signed(live.client, inbox["webhook_url"], envelope([message]))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"


async def test_the_event_sequencer_behind_a_pile_up_runs_one_round_per_deferral(
    live, backend, monkeypatch
):
    """PostgreSQL: after a burst the sequencer's rounds are the heaviest statements; while
    webhooks pile up, a sequencer that is behind waits for its deferral before its next round,
    and one that is not behind does not wait."""
    if backend == "sqlite":
        pytest.skip("no sequencer on SQLite")
    monkeypatch.setattr(pressure_module, "MAX_DEFER_SECONDS", 0.3)
    sequencer = live.runtime.sequencer
    monkeypatch.setattr(sequencer.watch.pressure, "piling_up", lambda: True)
    sequencer._behind, sequencer._last_round_at = True, time.monotonic()
    started = time.monotonic()
    await sequencer.run_once()
    assert time.monotonic() - started >= 0.3
    assert not sequencer._behind  # nothing staged: not behind any more
    started = time.monotonic()
    await sequencer.run_once()
    assert time.monotonic() - started < 0.3


async def test_a_watch_on_sqlite_knows_only_its_own_process(live, backend):
    if backend != "sqlite":
        pytest.skip("SQLite")
    pressure = IngestPressure()
    watch = PileUpWatch(live.runtime.db, pressure)
    assert not await watch.piling_up()
    for _ in range(MIN_FLUSHES * 2):
        pressure.flushed(int(PILE_UP_ROWS) * 2)
    assert await watch.piling_up()
