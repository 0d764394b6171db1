"""Several processes on one database: committed events cross over Redis (a real server)."""

from __future__ import annotations

import asyncio

from tests.helpers import PHONE_NUMBER_ID, auth, create_inbox, create_user, eventually, settle
from wadesk.audit.actions import Actor
from wadesk.conversations.actions import SendRequest, do_send_message
from wadesk.conversations.models import Conversation
from wadesk.realtime.bus import bus
from wadesk.runtime import Runtime

REDIS = "redis://127.0.0.1:6379/15"


async def test_a_message_queued_by_a_server_wakes_a_separate_worker_at_once(settings, live):
    """The live server sends nothing itself; a second runtime (the 'worker process') does."""
    live.runtime.outbox.stop()  # this server process does not send
    await create_inbox(live)
    _, token = await create_user(live, email="a@example.com")
    await live.simulator.customer_sends(
        PHONE_NUMBER_ID, "5511912345678", "Ana", {"type": "text", "text": "oi"}
    )
    await settle(live)
    server_settings = settings.model_copy(update={"redis_url": REDIS})
    worker_settings = settings.model_copy(
        update={"redis_url": REDIS, "outbox_poll_seconds": 3600.0}
    )
    server = Runtime(server_settings, run_workers=False)
    worker = Runtime(worker_settings, run_workers=True)
    await server.start()
    await worker.start()
    await asyncio.sleep(0.3)  # subscriptions in place
    try:
        with bus.subscribe() as events:  # the bus of this test process, fed by every runtime
            conversation = (
                await live.client.get("/api/v1/conversations", headers=auth(token))
            ).json()["items"][0]
            # Queue the message through the 'server' runtime's own session.
            async with server.db.session() as session:
                row = await session.get(Conversation, conversation["id"])
                await do_send_message(
                    session,
                    actor=Actor.system(),
                    conversation=row,
                    request=SendRequest(type="text", text="from another process"),
                    service_window_hours=24,
                )
            # The worker polls once an hour: only the Redis wake-up can make it send now.
            await eventually(lambda: _sent(live), timeout=5)
            kinds = []
            while not events.empty():
                kinds.append(events.get_nowait()[0])
        assert "outbox.queued" in kinds
    finally:
        await worker.stop()
        await server.stop()


async def _sent(live) -> bool:
    return any(
        o["body"].get("text", {}).get("body") == "from another process"
        for o in live.simulator.outbound()
    )
