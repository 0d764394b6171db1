"""Mutated real payloads, signed and posted over HTTP: never a 500, never a stuck pipeline."""

from __future__ import annotations

import asyncio
import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.channels.test_whatsapp_parse_fuzz import BODIES, NAMES, _mutate
from tests.helpers import APP_SECRET, create_inbox, envelope, post_signed, settle, text_message
from wadesk.channels.whatsapp.signature import sign
from wadesk.conversations.models import Message
from wadesk.ingest.models import WebhookDelivery


async def test_fuzzed_signed_webhooks_are_acknowledged_or_refused_never_crash(live):
    inbox = await create_inbox(live)
    url = inbox["webhook_url"]
    statuses: list[int] = []

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(name=st.sampled_from(NAMES), data=st.data(), raw=st.binary(max_size=200))
    def post(name: str, data: st.DataObject, raw: bytes) -> None:
        body = _mutate(data, json.loads(json.dumps(BODIES[name])))
        bodies = [json.dumps(body).encode(), raw]
        with httpx.Client(timeout=30) as client:
            for content in bodies:
                response = client.post(
                    url, content=content, headers={"X-Hub-Signature-256": sign(content, APP_SECRET)}
                )
                assert response.status_code in (200, 400, 413), response.text
                statuses.append(response.status_code)

    await asyncio.to_thread(post)
    await settle(live)
    assert 200 in statuses and 400 in statuses
    # The pipeline is still healthy: a normal message after the storm is stored.
    await post_signed(
        live.client, url, envelope([text_message("14155550099", "wamid.after", "still fine")])
    )
    await settle(live)
    async with live.runtime.db.session() as session:
        assert (
            await session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.external_id == "wamid.after")
            )
            == 1
        )
        pending = await session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == "pending")
        )
    assert pending == 0
