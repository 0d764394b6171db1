"""Meta-shaped webhook bodies, their signature, and delivery with Meta-like retries.

Meta resends a delivery that did not get a 200, less and less often; the simulator does the
same with a bounded schedule (``RETRY_DELAYS``, then the last delay again) until a total
retry budget is spent. Every retry carries the very same bytes and signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx
import orjson

from wadesk.channels.simulator.state import BusinessNumber

RETRY_DELAYS: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
SIGNATURE_HEADER = "X-Hub-Signature-256"

# Called after each attempt with the HTTP status (or "network") and the attempt's seconds.
AttemptHook = Callable[[int | str, float], None]


def sign(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def metadata(number: BusinessNumber) -> dict[str, str]:
    return {
        "display_phone_number": number.display_phone_number,
        "phone_number_id": number.phone_number_id,
    }


def messages_change(
    number: BusinessNumber, contacts: Iterable[tuple[str, str]], messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """A ``messages`` change carrying customer messages; contacts are (wa_id, profile name)."""
    return {
        "value": {
            "messaging_product": "whatsapp",
            "metadata": metadata(number),
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id} for wa_id, name in contacts],
            "messages": messages,
        },
        "field": "messages",
    }


def statuses_change(number: BusinessNumber, statuses: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "value": {
            "messaging_product": "whatsapp",
            "metadata": metadata(number),
            "statuses": statuses,
        },
        "field": "messages",
    }


def template_status_change(
    template_id: str, name: str, language: str, event: str, reason: str
) -> dict[str, Any]:
    return {
        "value": {
            "event": event,
            "message_template_id": int(template_id),
            "message_template_name": name,
            "message_template_language": language,
            "reason": reason,
        },
        "field": "message_template_status_update",
    }


def envelope(
    entries: Iterable[tuple[str, list[dict[str, Any]]]], *, time: int | None = None
) -> dict[str, Any]:
    """The delivery body; ``entries`` are (WABA id, changes). Account-level fields such as
    template status updates carry the entry ``time`` (Unix seconds); messages do not."""
    timed = {} if time is None else {"time": time}
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, **timed, "changes": changes} for waba_id, changes in entries],
    }


def encode(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


async def post_with_retries(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    app_secret: str,
    *,
    retry_delays: Sequence[float] = RETRY_DELAYS,
    retry_budget_seconds: float = 60.0,
    on_attempt: AttemptHook | None = None,
    slots: asyncio.Semaphore | None = None,
) -> bool:
    """POST a signed body until it gets a 200 or the retry budget is spent. ``slots``
    bounds the attempts in flight (an attempt waits for a slot before its clock starts)."""
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, app_secret)}
    waited = 0.0
    attempt = 0
    while True:
        async with slots or contextlib.nullcontext():
            started = time.perf_counter()
            outcome: int | str
            try:
                response = await client.post(url, content=body, headers=headers)
                outcome = response.status_code
            except httpx.HTTPError:
                outcome = "network"
        if on_attempt is not None:
            on_attempt(outcome, time.perf_counter() - started)
        if outcome == 200:
            return True
        if not retry_delays:
            return False
        delay = retry_delays[min(attempt, len(retry_delays) - 1)]
        if waited + delay > retry_budget_seconds:
            return False
        await asyncio.sleep(delay)
        waited += delay
        attempt += 1
