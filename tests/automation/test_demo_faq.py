"""The demo inbox of `make run`: its FAQ bot answers the three demo questions, in English or
Portuguese, and leaves small talk alone."""

from __future__ import annotations

from tests.automation.conftest import customer_says, received, settle_jobs, sim_inbox, wait_received
from wadesk.automation.demo import DEMO_FAQ, setup_faq_demo


async def test_the_demo_faq_answers_its_questions(live):
    inbox = await sim_inbox(live)
    async with live.runtime.db.session() as session:
        await setup_faq_demo(session, inbox["id"])
    answers = [answer for _, _, answer in DEMO_FAQ]
    await customer_says(live, "what time do you open?")
    assert await wait_received(live, 1) == [answers[0]]
    await settle_jobs(live)
    await customer_says(live, "quanto custa o frete")
    assert (await wait_received(live, 2))[1] == answers[1]
    await settle_jobs(live)
    await customer_says(live, "ok")
    await settle_jobs(live)
    assert len(received(live)) == 2
