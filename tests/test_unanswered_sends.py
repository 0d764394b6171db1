"""A send whose answer never came may have gone out: wadesk waits for WhatsApp's status
before sending it again (outbox/tracking.py), so a slow Graph API delivers nothing twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.helpers import PHONE_NUMBER_ID, auth, create_inbox, eventually
from tests.test_outbound import CUSTOMER, start_conversation
from wadesk.channels.base import OutboundMessage, StatusUpdate
from wadesk.channels.simulator.faults import FaultPlan
from wadesk.channels.whatsapp.client import build_payload
from wadesk.conversations.inbound import apply_statuses
from wadesk.conversations.models import Message, PendingStatus
from wadesk.db import utcnow
from wadesk.outbox.models import OutboxItem
from wadesk.outbox.tracking import message_id_from, tracking_for


@pytest.fixture
def slow_graph(fast_retries):
    """wadesk gives up on Graph's answer after 1 s; retries are otherwise quick."""
    fast_retries.graph_timeout_seconds = 1.0
    return fast_retries


def _first_answer_late(live, *, accepted: bool) -> None:
    """The customer's first send is answered after 3 s, accepted by WhatsApp or not."""
    live.simulator.set_faults(
        FaultPlan(
            recipients={CUSTOMER: "timeout"},
            recipient_fault_times=1,
            timeout_seconds=3.0,
            timeout_accepts=accepted,
        )
    )


async def _send(live, conversation_id: int, token: str, text: str) -> int:
    response = await live.client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"type": "text", "text": text},
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _message(live, message_id: int) -> Message:
    async with live.runtime.db.session() as session:
        message = await session.get(Message, message_id)
        assert message is not None
        return message


async def _outbox(live, message_id: int) -> OutboxItem:
    async with live.runtime.db.session() as session:
        row = await session.scalar(select(OutboxItem).where(OutboxItem.message_id == message_id))
        assert row is not None
        return row


@pytest.mark.parametrize("status_delay", [0.05, 2.0], ids=["status-first", "timeout-first"])
async def test_an_accepted_send_without_an_answer_is_not_sent_again(slow_graph, live, status_delay):
    slow_graph.outbox_unanswered_wait_seconds = 60.0
    conversation_id, token = await start_conversation(live)
    live.simulator.status_delay_seconds = status_delay
    _first_answer_late(live, accepted=True)
    first = await _send(live, conversation_id, token, "your order shipped")
    second = await _send(live, conversation_id, token, "tracking code XY123")

    async def both_sent() -> bool:
        statuses = [(await _message(live, m)).status for m in (first, second)]
        return all(s in ("sent", "delivered", "read") for s in statuses)

    # Well before the 60 s wait: the status adopted the first send and freed the second.
    await eventually(both_sent, timeout=20)
    sent = live.simulator.outbound(PHONE_NUMBER_ID)
    assert [s["body"]["text"]["body"] for s in sent] == [
        "your order shipped",
        "tracking code XY123",
    ]
    assert live.simulator.state()["max_copies"] == 1
    assert [s["body"]["biz_opaque_callback_data"] for s in sent] == [
        tracking_for(first),
        tracking_for(second),
    ]
    message = await _message(live, first)
    accepted = next(m for m in live.simulator.messages.values() if m.sender == "business")
    assert message.external_id is not None and message.external_id.startswith("wamid.")
    assert message.external_id in live.simulator.messages
    assert accepted.wa_id == CUSTOMER
    row = await _outbox(live, first)
    assert (row.state, row.attempts) == ("done", 1)


async def test_a_send_that_never_arrived_goes_again_after_the_wait(slow_graph, live):
    slow_graph.outbox_unanswered_wait_seconds = 1.5
    conversation_id, token = await start_conversation(live)
    _first_answer_late(live, accepted=False)
    message_id = await _send(live, conversation_id, token, "are you there?")

    async def waiting() -> bool:
        row = await _outbox(live, message_id)
        return row.attempts == 1 and "may have been sent" in (row.last_error or "")

    await eventually(waiting, timeout=10)
    await eventually(
        lambda: _status_in(live, message_id, ("sent", "delivered", "read")), timeout=20
    )
    assert [s["body"]["text"]["body"] for s in live.simulator.outbound(PHONE_NUMBER_ID)] == [
        "are you there?"
    ]
    row = await _outbox(live, message_id)
    assert (row.state, row.attempts) == ("done", 2)


async def _status_in(live, message_id: int, statuses: tuple[str, ...]) -> bool:
    return (await _message(live, message_id)).status in statuses


async def test_a_status_adopts_only_an_unanswered_send_of_its_own_inbox(live):
    """Callback data naming a message of another inbox, one that already has its provider
    id, or not wadesk's at all, adopts nothing: the status is parked as any unknown one."""
    conversation_id, token = await start_conversation(live)
    live.simulator.set_faults(FaultPlan(recipients={CUSTOMER: "http_500"}))
    message_id = await _send(live, conversation_id, token, "hold on")
    message = await _message(live, message_id)
    assert message.external_id is None
    other = await create_inbox(live, phone_number_id="222333444", simulator=False)
    now = datetime.now(UTC)

    def status(wamid: str, callback: str | None) -> StatusUpdate:
        return StatusUpdate(PHONE_NUMBER_ID, wamid, "sent", now, CUSTOMER, callback_data=callback)

    async with live.runtime.db.session() as session:
        outcome = await apply_statuses(
            session, other["id"], [status("wamid.other-inbox", tracking_for(message_id))]
        )
        assert outcome.statuses_pending == 1
        outcome = await apply_statuses(
            session,
            message.inbox_id,
            [
                status("wamid.not-ours", f"order:{message_id}"),
                status("wamid.no-callback", None),
            ],
        )
        assert outcome.statuses_pending == 2
    assert (await _message(live, message_id)).external_id is None
    async with live.runtime.db.session() as session:
        outcome = await apply_statuses(
            session, message.inbox_id, [status("wamid.ours", tracking_for(message_id))]
        )
        assert (outcome.statuses_applied, outcome.statuses_pending) == (1, 0)
    adopted = await _message(live, message_id)
    assert (adopted.external_id, adopted.status) == ("wamid.ours", "sent")
    assert (await _outbox(live, message_id)).state == "done"
    async with live.runtime.db.session() as session:
        # A second send's status for the same message is not adopted: the first one won.
        outcome = await apply_statuses(
            session, message.inbox_id, [status("wamid.later", tracking_for(message_id))]
        )
        assert outcome.statuses_pending == 1
        parked = (await session.scalars(select(PendingStatus.external_id))).all()
    assert sorted(parked) == [
        "wamid.later",
        "wamid.no-callback",
        "wamid.not-ours",
        "wamid.other-inbox",
    ]


def test_callback_data_round_trip_and_payload() -> None:
    assert message_id_from(tracking_for(42)) == 42
    for foreign in (None, "", "wadesk:message:", "wadesk:message:12a", "campaign-7", "9" * 40):
        assert message_id_from(foreign) is None
    assert message_id_from("wadesk:message:" + "9" * 19) is None
    payload = build_payload(OutboundMessage(recipient=CUSTOMER, type="text", text="hi"))
    assert "biz_opaque_callback_data" not in payload
    payload = build_payload(
        OutboundMessage(recipient=CUSTOMER, type="text", text="hi", tracking=tracking_for(7))
    )
    assert payload["biz_opaque_callback_data"] == "wadesk:message:7"


async def test_a_shutdown_hands_back_a_send_cut_off_in_flight_only_after_the_wait(settings, live):
    """Claims a stopping process could not finish are handed back at once, except a send
    whose request was out: it may have reached Meta, so it waits for its status first."""
    settings.graph_timeout_seconds = 30.0
    settings.outbox_unanswered_wait_seconds = 60.0
    conversation_id, token = await start_conversation(live)
    live.simulator.set_faults(FaultPlan(timeout=1.0, timeout_seconds=3.0, timeout_accepts=True))
    first = await _send(live, conversation_id, token, "one")
    second = await _send(live, conversation_id, token, "two")
    outbox = live.runtime.outbox

    async def first_in_flight() -> bool:
        row = await _outbox(live, first)
        return row.id in outbox.in_flight

    await eventually(first_in_flight, timeout=10)
    async with live.runtime.db.session() as session:
        # The second as if claimed in the same batch, waiting behind the first.
        await session.execute(
            update(OutboxItem)
            .where(OutboxItem.message_id == second)
            .values(
                lease_owner=outbox.owner,
                next_attempt_at=utcnow() + timedelta(seconds=60),
                attempts=OutboxItem.attempts + 1,
            )
        )
    await live.runtime._release_claims()
    cut_off, waiting = await _outbox(live, first), await _outbox(live, second)
    now = datetime.now(UTC)
    assert cut_off.lease_owner is None and "may have been sent" in (cut_off.last_error or "")
    assert (cut_off.next_attempt_at - now).total_seconds() > 50
    assert cut_off.attempts == 1
    assert waiting.lease_owner is None and waiting.next_attempt_at <= now
    assert waiting.attempts == 0


async def test_a_last_attempt_without_an_answer_does_not_fail_a_message_its_status_adopted(
    slow_graph, live
):
    """Out of attempts after a lost answer, but the status came first: the message went out,
    it is not marked failed, and its outbox row stays done."""
    slow_graph.outbox_max_attempts = 1
    conversation_id, token = await start_conversation(live)
    _first_answer_late(live, accepted=True)
    message_id = await _send(live, conversation_id, token, "last chance")

    await eventually(lambda: _status_in(live, message_id, ("delivered", "read")), timeout=20)
    await asyncio.sleep(1.5)  # past the 1 s timeout: the failure path has run
    message = await _message(live, message_id)
    assert message.status in ("delivered", "read") and message.error_code is None
    row = await _outbox(live, message_id)
    assert (row.state, row.last_error) == ("done", None)
