"""PATCH /api/v1/contacts/{id} attributes: a JSON merge patch (RFC 7396), one level deep."""

from __future__ import annotations

from sqlalchemy import select

from tests.helpers import auth
from tests.routing.util import world, write_in
from wadesk.audit.models import AuditEvent
from wadesk.db import utcnow
from wadesk.routing import actions


async def _create(live, token: str, phone: str, **attributes) -> int:
    r = await live.client.post(
        "/api/v1/contacts",
        json={"name": "Customer", "phone": f"+{phone}", "attributes": attributes},
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _patch(live, token: str, contact_id: int, body: dict) -> dict:
    r = await live.client.patch(f"/api/v1/contacts/{contact_id}", json=body, headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


async def test_null_removes_other_values_set_absent_keys_stay(live):
    w = await world(live, ())
    contact = await _create(
        live, w.admin, "5521944440001", tier="gold", plan="pro", address={"city": "Rio", "zip": "1"}
    )
    patched = await _patch(
        live,
        w.admin,
        contact,
        {"attributes": {"tier": None, "plan": "basic", "address": {"city": "Niterói"}, "x": 0}},
    )
    # Objects are replaced whole; merging stops at the first level.
    assert patched["attributes"] == {"plan": "basic", "address": {"city": "Niterói"}, "x": 0}
    # Removing a key that is not there is no error; an empty patch changes nothing.
    assert (await _patch(live, w.admin, contact, {"attributes": {"nope": None}}))[
        "attributes"
    ] == patched["attributes"]
    assert (await _patch(live, w.admin, contact, {"attributes": {}}))["attributes"] == patched[
        "attributes"
    ]
    # Backward compatible: no attributes (or attributes: null) leaves them alone.
    assert (await _patch(live, w.admin, contact, {"name": "Ana"}))["attributes"] == patched[
        "attributes"
    ]
    assert (await _patch(live, w.admin, contact, {"attributes": None}))["attributes"] == patched[
        "attributes"
    ]


async def test_removal_is_audited_with_before_and_after(live):
    w = await world(live, ())
    contact = await _create(live, w.admin, "5521944440002", tier="gold", plan="pro")
    await _patch(live, w.admin, contact, {"attributes": {"tier": None}})
    async with live.runtime.db.session() as session:
        event = await session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "contact.update", AuditEvent.target_id == str(contact))
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
    assert event is not None and event.actor_type == "token"
    assert event.details["before"]["attributes"] == {"tier": "gold", "plan": "pro"}
    assert event.details["after"]["attributes"] == {"plan": "pro"}


async def test_a_patch_that_removes_keys_is_re_evaluated_by_routing(live):
    """The same path as any attribute change: ``updated_at`` moves, so the routing sweeper
    re-evaluates the contact's open conversations."""
    w = await world(live, ("ana",))
    contact = await _create(live, w.admin, "5521944440003", tier="gold")
    cid = await write_in(live, w, "5521944440003")
    since = utcnow()
    await _patch(live, w.admin, contact, {"attributes": {"tier": None, "monthly_spend": 5000}})
    async with live.runtime.db.session() as session:
        changed = await actions.sweep_contacts(session, since)
        await session.commit()
    facts = (
        await live.client.get(f"/api/v1/routing/conversations/{cid}", headers=auth(w.admin))
    ).json()
    conversation = (
        await live.client.get(f"/api/v1/conversations/{cid}", headers=auth(w.admin))
    ).json()
    # The sweeper may have got there first; either way the contact was re-evaluated.
    assert changed in (0, 1) and facts["tags"] == ["vip"]
    assert conversation["priority"] == "high"


async def test_openapi_documents_the_merge_patch(live):
    schema = (await live.client.get("/openapi.json")).json()
    update = schema["components"]["schemas"]["ContactUpdate"]["properties"]["attributes"]
    assert "RFC 7396" in update["description"]
    assert '{"plan": "gold", "tier": null}' in update["description"]
