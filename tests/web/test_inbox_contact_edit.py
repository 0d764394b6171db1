"""The inbox's contact panel form and the @mention list: what is saved, what is refused, who may."""

from __future__ import annotations

from sqlalchemy import select

from tests.helpers import (
    SYSTEM,
    auth,
    create_inbox,
    create_user,
    envelope,
    logged_events,
    post_signed,
    settle,
    text_message,
)
from tests.web.client import csrf_of, sign_in
from wadesk.audit.models import AuditEvent
from wadesk.contacts.models import Contact
from wadesk.conversations.models import Conversation, Message
from wadesk.realtime.models import EventRecord

HX = {"HX-Request": "true"}


async def _conversation(live, inbox, wa_id="5511987654321", wamid="wamid.ce1"):
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope(
            [text_message(wa_id, wamid, "Oi")],
            names={wa_id: "Maria"},
            phone_number_id=inbox["phone_number_id"],
        ),
    )
    await settle(live)
    async with live.runtime.db.session() as session:
        message = await session.scalar(select(Message).where(Message.external_id == wamid))
        conversation = await session.get(Conversation, message.conversation_id)
        return conversation.id, conversation.contact_id


async def _contact(live, contact_id) -> Contact:
    async with live.runtime.db.session() as session:
        contact = await session.get(Contact, contact_id)
        assert contact is not None
        return contact


async def _set_attributes(live, contact_id, attributes):
    async with live.runtime.db.session() as session:
        contact = await session.get(Contact, contact_id)
        contact.attributes = attributes


def _form(csrf, *, name="Maria", email="", rows=(), remove=()):
    """Form fields as the browser posts them: one (original, key, value) per attribute row."""
    rows = list(rows)
    return {
        "csrf_token": csrf,
        "name": name,
        "email": email,
        "attr_original": [r[0] for r in rows],
        "attr_key": [r[1] for r in rows],
        "attr_value": [r[2] for r in rows],
        "remove": list(remove),
    }


async def test_an_agent_edits_name_email_and_attributes_from_the_panel(live):
    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    cid, contact_id = await _conversation(live, inbox)
    await _set_attributes(
        live, contact_id, {"plan": "gold", "orders": 3, "vip": True, "old": "x", "zip": "007"}
    )
    agent = await sign_in(live, "ana@example.com")
    page = await agent.get(f"/inbox/c/{cid}")
    assert "data-edit-contact" in page.text
    csrf = csrf_of(page.text)
    edit = await agent.get(f"/inbox/c/{cid}/contact?edit=1", headers=HX)
    assert edit.status_code == 200 and 'id="contact-form"' in edit.text
    assert 'value="gold"' in edit.text and 'value="true"' in edit.text

    saved = await agent.post(
        f"/inbox/c/{cid}/contact",
        data=_form(
            csrf,
            name="Maria Souza",
            email="maria@example.com",
            rows=[
                ("plan", "plan", "platinum"),  # changed
                ("orders", "orders", "3"),  # unchanged: stays the number 3
                ("vip", "vip", "true"),  # unchanged: stays a boolean
                ("zip", "zip", "007"),  # unchanged text, not a number
                ("old", "old", "x"),  # removed below
                ("", "monthly_spend", "1250.5"),  # new: a number
                ("", "order.id", "00042"),  # new: leading zeros stay text
                ("", "", ""),  # the empty row
            ],
            remove=["old"],
        ),
        headers=HX,
    )
    assert saved.status_code == 200, saved.text
    assert 'id="contact-form"' not in saved.text and "platinum" in saved.text
    assert "Maria Souza" in saved.text and "maria@example.com" in saved.text
    contact = await _contact(live, contact_id)
    assert contact.name == "Maria Souza" and contact.email == "maria@example.com"
    assert contact.attributes == {
        "plan": "platinum",
        "orders": 3,
        "vip": True,
        "zip": "007",
        "monthly_spend": 1250.5,
        "order.id": "00042",
    }
    assert isinstance(contact.attributes["orders"], int)

    async with live.runtime.db.session() as session:
        audit = (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "contact.update", AuditEvent.target_id == str(contact_id)
                )
            )
        ).all()
    assert len(audit) == 1
    details = audit[0].details
    assert details["before"]["name"] == "Maria" and details["after"]["name"] == "Maria Souza"
    assert details["before"]["attributes"]["old"] == "x"
    assert "old" not in details["after"]["attributes"]
    assert details["after"]["attributes"]["monthly_spend"] == 1250.5
    assert audit[0].actor_type == "user"
    # The live event names the inbox, so its agents' panels follow (not only admins').
    await logged_events(live)
    async with live.runtime.db.session() as session:
        event = await session.scalar(
            select(EventRecord)
            .where(EventRecord.kind == "contact.updated")
            .order_by(EventRecord.id.desc())
        )
        conversation = await session.get(Conversation, cid)
    assert event is not None and event.inbox_id == conversation.inbox_id

    # A rename keeps one attribute under the new name; nothing typed, nothing audited.
    renamed = await agent.post(
        f"/inbox/c/{cid}/contact",
        data=_form(
            csrf,
            name="Maria Souza",
            email="maria@example.com",
            rows=[("plan", "tier", "platinum")],
        ),
        headers=HX,
    )
    assert renamed.status_code == 200
    contact = await _contact(live, contact_id)
    assert "plan" not in contact.attributes and contact.attributes["tier"] == "platinum"
    same = await agent.post(
        f"/inbox/c/{cid}/contact",
        data=_form(csrf, name="Maria Souza", email="maria@example.com"),
        headers=HX,
    )
    assert same.status_code == 200
    async with live.runtime.db.session() as session:
        count = len(
            (
                await session.scalars(
                    select(AuditEvent.id).where(AuditEvent.action == "contact.update")
                )
            ).all()
        )
    assert count == 2
    # Without htmx (no script), the form redirects back to the conversation.
    plain = await agent.post(
        f"/inbox/c/{cid}/contact",
        data=_form(csrf, name="Maria S.", email="maria@example.com"),
        follow_redirects=False,
    )
    assert plain.status_code == 303 and plain.headers["location"] == f"/inbox/c/{cid}"
    await agent.aclose()


async def test_a_refused_form_says_why_and_keeps_what_was_typed(live):
    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    cid, contact_id = await _conversation(live, inbox)
    await _set_attributes(live, contact_id, {"plan": "gold"})
    agent = await sign_in(live, "ana@example.com")
    csrf = csrf_of((await agent.get(f"/inbox/c/{cid}")).text)

    cases = [
        ({"rows": [("", "bad key!", "1")]}, "is not a valid attribute name"),
        ({"rows": [("", "k" * 65, "1")]}, "is not a valid attribute name"),
        ({"rows": [("", "note", "x" * 501)]}, "is too long"),
        ({"rows": [("", "", "orphan value")]}, "Every attribute needs a name."),
        ({"rows": [("plan", "plan", "gold"), ("", "plan", "silver")]}, "appears twice"),
        ({"email": "not-an-email"}, "is not a valid e-mail address"),
        ({"name": "n" * 201}, "at most 200 characters"),
        ({"rows": [("", f"k{n}", "v") for n in range(50)]}, "at most 50 attributes"),
    ]
    for fields, message in cases:
        response = await agent.post(
            f"/inbox/c/{cid}/contact", data=_form(csrf, **fields), headers=HX
        )
        assert response.status_code == 422, (fields, response.status_code)
        assert message in response.text, message
        assert 'id="contact-form"' in response.text and 'role="alert"' in response.text
    # What was typed comes back in the form.
    typed = await agent.post(
        f"/inbox/c/{cid}/contact",
        data=_form(csrf, name="Maria Typed", rows=[("", "bad key!", "kept value")]),
        headers=HX,
    )
    assert 'value="Maria Typed"' in typed.text
    assert 'value="bad key!"' in typed.text and 'value="kept value"' in typed.text
    # Without htmx it is an error page, still a 4xx.
    plain = await agent.post(
        f"/inbox/c/{cid}/contact", data=_form(csrf, rows=[("", "bad key!", "1")])
    )
    assert plain.status_code == 422 and "is not a valid attribute name" in plain.text
    contact = await _contact(live, contact_id)
    assert contact.attributes == {"plan": "gold"} and contact.name == "Maria"
    async with live.runtime.db.session() as session:
        assert (
            await session.scalar(select(AuditEvent.id).where(AuditEvent.action == "contact.update"))
            is None
        )
    # A contact already holding 50 attributes (a CRM's push) can still be edited and trimmed.
    await _set_attributes(live, contact_id, {f"k{n}": n for n in range(55)})
    trimmed = await agent.post(
        f"/inbox/c/{cid}/contact",
        data=_form(csrf, rows=[("k1", "k1", "changed"), ("k2", "k2", "2")], remove=["k2"]),
        headers=HX,
    )
    assert trimmed.status_code == 200, trimmed.text
    contact = await _contact(live, contact_id)
    assert contact.attributes["k1"] == "changed" and "k2" not in contact.attributes
    assert len(contact.attributes) == 54
    await agent.aclose()


async def test_only_people_who_see_the_conversation_may_edit_it(live):
    mine = await create_inbox(live)
    other = await create_inbox(live, phone_number_id="106540352242999")
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(mine["id"],))
    cid, contact_id = await _conversation(live, other, "5511900000001", "wamid.ce-o1")
    agent = await sign_in(live, "ana@example.com")
    csrf = csrf_of((await agent.get("/inbox")).text)
    for url in (
        f"/inbox/c/{cid}/contact",
        f"/inbox/c/{cid}/contact?edit=1",
        f"/inbox/c/{cid}/mentionable?q=a",
    ):
        assert (await agent.get(url)).status_code == 404, url
    refused = await agent.post(
        f"/inbox/c/{cid}/contact",
        data=_form(csrf, name="Hacked", rows=[("", "x", "1")]),
        headers=HX,
    )
    assert refused.status_code == 404
    contact = await _contact(live, contact_id)
    assert contact.name == "Maria" and contact.attributes == {}
    await agent.aclose()


async def test_the_contact_form_needs_the_csrf_token(live):
    inbox = await create_inbox(live)
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    cid, contact_id = await _conversation(live, inbox)
    agent = await sign_in(live, "ana@example.com")
    missing = await agent.post(
        f"/inbox/c/{cid}/contact", data={"name": "Hacked", "email": ""}, headers=HX
    )
    assert missing.status_code == 403
    wrong = await agent.post(
        f"/inbox/c/{cid}/contact",
        data=_form("x" * 43, name="Hacked"),
        headers=HX,
    )
    assert wrong.status_code == 403
    assert (await _contact(live, contact_id)).name == "Maria"
    await agent.aclose()


async def test_the_api_patch_merges_null_removes_and_the_action_removes_keys(live):
    inbox = await create_inbox(live)
    _, token = await create_user(live, email="boss@example.com")
    _cid, contact_id = await _conversation(live, inbox)
    await _set_attributes(live, contact_id, {"a": 1, "b": 2})
    patched = await live.client.patch(
        f"/api/v1/contacts/{contact_id}",
        json={"attributes": {"b": None, "c": "x"}},
        headers=auth(token),
    )
    assert patched.status_code == 200
    assert patched.json()["attributes"] == {"a": 1, "c": "x"}

    from wadesk.contacts.actions import do_update_contact

    async with live.runtime.db.session() as session:
        contact = await session.get(Contact, contact_id)
        await do_update_contact(
            session, actor=SYSTEM, contact=contact, changes={}, remove_attributes=["a", "zz"]
        )
    assert (await _contact(live, contact_id)).attributes == {"c": "x"}


async def test_mentionable_lists_people_who_see_the_inbox_with_their_handle(live):
    inbox = await create_inbox(live)
    other = await create_inbox(live, phone_number_id="106540352242999")
    await create_user(live, email="bruno@example.com", role="agent", inbox_ids=(inbox["id"],))
    await create_user(live, email="ana@example.com", role="agent", inbox_ids=(inbox["id"],))
    await create_user(live, email="ana@other.example", role="agent", inbox_ids=(inbox["id"],))
    await create_user(live, email="andre@example.com", role="agent", inbox_ids=(other["id"],))
    await create_user(live, email="boss@example.com", role="admin")
    cid, _ = await _conversation(live, inbox)
    agent = await sign_in(live, "bruno@example.com")
    found = await agent.get(f"/inbox/c/{cid}/mentionable?q=an")
    assert found.status_code == 200
    handles = [p["handle"] for p in found.json()["items"]]
    # Two people share "ana": each gets the full address; André sees another inbox only.
    assert sorted(handles) == ["ana@example.com", "ana@other.example"]
    everyone = (await agent.get(f"/inbox/c/{cid}/mentionable")).json()["items"]
    assert {p["handle"] for p in everyone} == {"ana@example.com", "ana@other.example", "boss"}
    assert (await agent.get(f"/inbox/c/{cid}/mentionable?q=" + "x" * 101)).status_code == 422
    await agent.aclose()
