"""Builders shared by the tests: users, tokens, inboxes, signed Meta-shaped webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from aiohttp import web

from wadesk.accounts.actions import do_add_inbox_member, do_create_token, do_create_user
from wadesk.audit.actions import Actor
from wadesk.channels.whatsapp.signature import sign
from wadesk.inboxes.actions import do_create_whatsapp_inbox, webhook_url

SYSTEM = Actor.system("tests")
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
APP_SECRET = "test-app-secret"


async def create_user(
    live: Any,
    *,
    email: str,
    role: str = "admin",
    scopes: tuple[str, ...] = ("read", "write", "admin"),
    inbox_ids: tuple[int, ...] = (),
) -> tuple[int, str]:
    """A user and a bearer token for them."""
    async with live.runtime.db.session() as session:
        user = await do_create_user(
            session,
            actor=SYSTEM,
            email=email,
            name=email.split("@")[0],
            role=role,
            password="correct horse battery",
        )
        for inbox_id in inbox_ids:
            await do_add_inbox_member(session, actor=SYSTEM, inbox_id=inbox_id, user=user)
        _, token = await do_create_token(session, actor=SYSTEM, user=user, name="t", scopes=scopes)
        return user.id, token


async def create_inbox(
    live: Any,
    *,
    phone_number_id: str = PHONE_NUMBER_ID,
    app_secret: str = APP_SECRET,
    simulator: bool = True,
    pair_rate: float | None = 50.0,
) -> dict[str, Any]:
    graph = f"{live.base_url}/simulator/graph" if simulator else "http://127.0.0.1:9/graph"
    async with live.runtime.db.session() as session:
        inbox = await do_create_whatsapp_inbox(
            session,
            actor=SYSTEM,
            settings=live.runtime.settings,
            name=f"WhatsApp {phone_number_id}",
            phone_number_id=phone_number_id,
            waba_id=WABA_ID,
            access_token="EAAG-test-token",
            app_secret=app_secret,
            verify_token="verify-me-please",
            display_phone_number="15550783881",
            graph_url=graph,
        )
        inbox.pair_rate_per_s, inbox.pair_burst = pair_rate, 100
        info = {
            "id": inbox.id,
            "webhook_url": webhook_url(live.runtime.settings, inbox),
            "app_secret": app_secret,
            "phone_number_id": phone_number_id,
        }
    live.runtime.registry.invalidate()
    # let the embedded simulator learn the new number
    await asyncio.sleep(0.05)
    return info


def text_message(wa_id: str, wamid: str, body: str, ts: int | None = None) -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(ts or int(time.time())),
        "type": "text",
        "text": {"body": body},
    }


def envelope(
    messages: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    *,
    phone_number_id: str = PHONE_NUMBER_ID,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
    }
    if messages:
        senders = {m["from"] for m in messages}
        value["contacts"] = [
            {"profile": {"name": (names or {}).get(s, f"Customer {s[-4:]}")}, "wa_id": s}
            for s in sorted(senders)
        ]
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
    }


async def post_signed(
    client: httpx.AsyncClient, url: str, payload: dict[str, Any] | bytes, secret: str = APP_SECRET
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await client.post(
        url,
        content=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)},
    )


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, interval: float = 0.05
) -> Any:
    """Poll until check() returns something truthy; fail with the last value after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def settle(live: Any) -> None:
    """Wait until every stored delivery is processed (by this call or the background loop)."""

    async def nothing_pending() -> bool:
        await live.runtime.processor.process_available()
        return await pending_deliveries(live) == 0

    await eventually(nothing_pending)
    await logged_events(live)


async def pending_deliveries(live: Any) -> int:
    """How many stored deliveries wait for processing."""
    from sqlalchemy import func, select

    from wadesk.ingest.models import WebhookDelivery

    async with live.runtime.db.session() as session:
        pending = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == "pending")
        )
    return int(pending or 0)


async def logged_events(live: Any) -> None:
    """PostgreSQL: move committed events into the log now (the runtime's sequencer does so
    within moments); SQLite writes them there in their own transaction."""
    from wadesk.realtime.sequencer import sequence_pending

    if not live.runtime.db.is_sqlite:
        await sequence_pending(live.runtime.db)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def run_wadesk(live: Any, *args: str, ok: bool = True) -> tuple[int, str, str]:
    """The `wadesk` command in a subprocess on the test database (wide enough for tables);
    with ``ok``, it must exit 0. Returns the exit code, standard output and error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wadesk",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "WADESK_BASE_URL": live.base_url, "COLUMNS": "200"},
    )
    out, err = await process.communicate()
    if ok:
        assert process.returncode == 0, err.decode()
    return process.returncode or 0, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def local_http_server(app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app on a free port of 127.0.0.1; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
