"""Faults on sends, Meta's pair rate, the status faults, and the /control endpoints."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from wadesk.channels.simulator.faults import FaultPlan

from .conftest import Harness, wait_until

CUSTOMER = "5511987654321"


@pytest.mark.parametrize(
    ("plan", "http_status", "code"),
    [
        (FaultPlan(http_500=1.0), 500, 131000),
        (FaultPlan(rate_limit=1.0), 429, 130429),
        (FaultPlan(pair_limit=1.0), 400, 131056),
        (FaultPlan(recipients={CUSTOMER: "pair_limit"}), 400, 131056),
    ],
)
async def test_answer_faults(
    harness: Harness, plan: FaultPlan, http_status: int, code: int
) -> None:
    harness.sim.set_faults(plan)
    response = await harness.send_text(to=CUSTOMER)
    assert response.status_code == http_status
    error = response.json()["error"]
    assert error["code"] == code and error["fbtrace_id"]
    state = harness.sim.state()
    assert state["sends"]["accepted"] == 0
    assert state["sends"]["rejected_by_code"] == {str(code): 1}
    assert state["sends"]["rejected_by_http_status"] == {str(http_status): 1}
    assert state["recipients"][CUSTOMER] == {"attempts": 1, "accepted": 0, "rejected": 1}
    assert harness.sim.outbound() == []


async def test_recipient_fault_applies_a_bounded_number_of_times(harness: Harness) -> None:
    harness.sim.set_faults(FaultPlan(recipients={CUSTOMER: "http_500"}, recipient_fault_times=2))
    codes = [(await harness.send_text(to=CUSTOMER)).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    assert (await harness.send_text(to="5511911112222")).status_code == 200


async def test_pair_rate_limit(harness: Harness) -> None:
    harness.sim.set_faults(FaultPlan(pair_limit_per_6s=2))
    codes = [(await harness.send_text(to=CUSTOMER, text=str(i))).status_code for i in range(3)]
    assert codes == [200, 200, 400]
    assert (await harness.send_text(to="5511911112222")).status_code == 200


async def test_timeout_that_was_accepted_counts_copies(harness: Harness) -> None:
    """The client gives up, but the message reached the customer: a retry is a second copy."""
    harness.sim.set_faults(FaultPlan(timeout=1.0, timeout_seconds=0.4))
    body = {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "text",
        "text": {"body": "same words"},
    }
    with pytest.raises(httpx.ReadTimeout):
        await harness.send(body, timeout=0.1)
    harness.sim.set_faults(FaultPlan())
    await harness.send_text(to=CUSTOMER, text="same words")
    state = harness.sim.state()
    assert state["sends"]["timeouts"] == 1
    assert state["sends"]["accepted"] == 2
    assert state["max_copies"] == 2
    assert {m["copies"] for m in state["messages"].values()} == {2}


async def test_timeout_that_was_not_accepted(harness: Harness) -> None:
    harness.sim.set_faults(FaultPlan(timeout=1.0, timeout_seconds=0.05, timeout_accepts=False))
    response = await harness.send_text(to=CUSTOMER)
    assert response.status_code == 503
    assert harness.sim.state()["sends"]["accepted"] == 0


async def test_distinct_messages_are_one_copy_each(harness: Harness) -> None:
    for text in ("one", "two"):
        await harness.send_text(to=CUSTOMER, text=text)
    assert harness.sim.state()["max_copies"] == 1


@pytest.mark.parametrize(
    ("plan", "code"),
    [
        (FaultPlan(undeliverable=1.0), 131026),
        (FaultPlan(reengagement=1.0), 131047),
        (FaultPlan(enforce_service_window=True), 131047),
    ],
)
async def test_accepted_then_failed_status(harness: Harness, plan: FaultPlan, code: int) -> None:
    harness.sim.set_faults(plan)
    response = await harness.send_text(to=CUSTOMER)
    assert response.status_code == 200
    wamid = response.json()["messages"][0]["id"]
    await wait_until(lambda: harness.receiver.status_names(wamid) == ["failed"])
    [failed] = harness.receiver.statuses(wamid)
    [error] = failed["errors"]
    assert error["code"] == code
    assert error["title"] and error["message"] and error["error_data"]["details"]
    assert harness.sim.state()["sends"]["failed_statuses_by_code"] == {str(code): 1}


async def test_service_window_is_open_after_the_customer_writes(harness: Harness) -> None:
    harness.sim.set_faults(FaultPlan(enforce_service_window=True))
    pnid = harness.number.phone_number_id
    await harness.sim.customer_sends(pnid, CUSTOMER, "Ana", {"type": "text", "text": "hi"})
    wamid = (await harness.send_text(to=CUSTOMER)).json()["messages"][0]["id"]
    await wait_until(lambda: harness.receiver.status_names(wamid)[:1] == ["sent"])


async def test_duplicate_and_out_of_order_statuses(harness: Harness) -> None:
    harness.sim.set_faults(FaultPlan(duplicate_statuses=1.0, out_of_order_statuses=1.0))
    wamid = (await harness.send_text(to=CUSTOMER)).json()["messages"][0]["id"]
    expected = ["sent", "sent", "read", "read", "delivered", "delivered"]
    await wait_until(lambda: harness.receiver.status_names(wamid) == expected)
    await asyncio.sleep(0.1)
    assert harness.receiver.status_names(wamid) == expected
    assert harness.sim.messages[wamid].status == "read"


async def test_control_endpoints(harness: Harness) -> None:
    url = f"{harness.base}/control/faults"
    response = await harness.client.post(url, json={"http_500": 1.0, "seed": 7})
    assert response.status_code == 200 and response.json()["http_500"] == 1.0
    assert (await harness.client.get(url)).json()["seed"] == 7
    assert (await harness.send_text()).status_code == 500
    state = (await harness.client.get(f"{harness.base}/control/state")).json()
    assert state["sends"]["rejected_by_code"] == {"131000": 1}
    assert state["faults"]["http_500"] == 1.0
    for bad in ({"http_500": 2}, {"nonsense": 1}, {"recipients": {CUSTOMER: "meteor"}}):
        assert (await harness.client.post(url, json=bad)).status_code == 422
    assert (await harness.client.post(url, content=b"{")).status_code == 400


async def test_probabilities_follow_the_seed(harness: Harness) -> None:
    outcomes = []
    for _ in range(2):
        harness.sim.set_faults(FaultPlan(http_500=0.5, seed=42))
        outcomes.append([(await harness.send_text(text=str(i))).status_code for i in range(10)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {200, 500}
