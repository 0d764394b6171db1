"""A load generator: many customers writing to one business number, as signed Meta webhooks.

It talks straight to the webhook URL (no simulator needed), paced at ``rate`` messages per
second, re-sends a fraction of deliveries the way Meta sends duplicates, and retries
non-200 answers with a short bounded backoff. Latencies are per HTTP attempt.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from wadesk.channels.simulator import webhooks
from wadesk.channels.simulator.state import BusinessNumber, new_wamid, unix_now

FIRST_WA_ID = 5511900000000
LOAD_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)


@dataclass
class LoadReport:
    sent: int = 0  # distinct messages sent
    accepted: int = 0  # messages whose delivery got a 200 (after retries)
    rejected_by_status: dict[str, int] = field(default_factory=dict)  # non-200 attempts
    retries: int = 0  # attempts beyond the first, over all deliveries
    duplicates_sent: int = 0  # deliveries sent a second time
    deliveries: int = 0
    elapsed_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0

    @property
    def failed(self) -> int:
        return self.sent - self.accepted

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failed": self.failed}


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def customer_wa_id(index: int) -> str:
    return str(FIRST_WA_ID + index)


async def run_load(
    *,
    webhook_url: str,
    app_secret: str,
    phone_number_id: str,
    display_phone_number: str,
    messages: int,
    customers: int,
    rate: float,
    duplicates: float = 0.0,
    batch: int = 1,
    retries: bool = True,
    concurrency: int = 64,
    progress: Callable[[int], None] | None = None,
    waba_id: str | None = None,
) -> LoadReport:
    """Send ``messages`` text messages from ``customers`` customers; ``waba_id`` (the entry
    id) defaults to the phone number id."""
    if messages < 1 or customers < 1 or batch < 1 or concurrency < 1:
        raise ValueError("messages, customers, batch and concurrency must be at least 1")
    if rate <= 0:
        raise ValueError("rate must be positive")
    if not 0.0 <= duplicates <= 1.0:
        raise ValueError("duplicates is a fraction between 0 and 1")
    number = BusinessNumber(
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        waba_id=waba_id or phone_number_id,
        access_token="",
        app_secret=app_secret,
        webhook_url=webhook_url,
    )
    report = LoadReport()
    rejected: Counter[str] = Counter()
    latencies: list[float] = []
    slots = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()

    async def deliver(client: httpx.AsyncClient, first: int) -> None:
        indices = range(first, min(first + batch, messages))
        body = _delivery(number, indices, customers)
        attempts = 0

        def count(outcome: int | str, seconds: float) -> None:
            nonlocal attempts
            attempts += 1
            latencies.append(seconds * 1000)
            if outcome != 200:
                rejected[str(outcome)] += 1

        try:
            ok = await _post(client, number, body, retries, count)
            report.retries += attempts - 1
            if ok:
                report.accepted += len(indices)
                if duplicates and random.random() < duplicates:
                    report.duplicates_sent += 1
                    await _post(client, number, body, retries, count)
            report.sent += len(indices)
            report.deliveries += 1
            if progress is not None:
                progress(report.sent)
        finally:
            slots.release()

    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(timeout=30.0, limits=limits) as client,
        asyncio.TaskGroup() as group,
    ):
        begin = loop.time()
        for k, first in enumerate(range(0, messages, batch)):
            delay = begin + k * batch / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            group.create_task(deliver(client, first))
    report.elapsed_s = round(time.perf_counter() - started, 3)
    ordered = sorted(latencies)
    report.p50_ms = round(_percentile(ordered, 0.50), 2)
    report.p99_ms = round(_percentile(ordered, 0.99), 2)
    report.max_ms = round(ordered[-1], 2) if ordered else 0.0
    report.rejected_by_status = dict(rejected)
    return report


async def _post(
    client: httpx.AsyncClient,
    number: BusinessNumber,
    body: bytes,
    retries: bool,
    on_attempt: webhooks.AttemptHook,
) -> bool:
    return await webhooks.post_with_retries(
        client,
        number.webhook_url,
        body,
        number.app_secret,
        retry_delays=LOAD_RETRY_DELAYS if retries else (),
        retry_budget_seconds=sum(LOAD_RETRY_DELAYS),
        on_attempt=on_attempt,
    )


def _delivery(number: BusinessNumber, indices: range, customers: int) -> bytes:
    """One delivery: one change per customer, each with that customer's messages."""
    by_customer: dict[int, list[dict[str, Any]]] = {}
    for index in indices:
        customer = index % customers
        wa_id = customer_wa_id(customer)
        by_customer.setdefault(customer, []).append(
            {
                "from": wa_id,
                "id": new_wamid(wa_id),
                "timestamp": unix_now(),
                "type": "text",
                "text": {"body": f"load test message {index}"},
            }
        )
    changes = [
        webhooks.messages_change(number, [(customer_wa_id(c), f"Load customer {c}")], metas)
        for c, metas in by_customer.items()
    ]
    return webhooks.encode(webhooks.envelope([(number.waba_id, changes)]))
