"""/api/v1/links over real HTTP: the builder's API, permissions, validation, audit, limits."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from tests.helpers import auth, create_inbox, create_user
from tests.links.conftest import BR_NUMBER, new_link
from wadesk.audit.models import AuditEvent
from wadesk.db import utcnow


async def test_create_a_link_with_everything_a_builder_shows(live, admin):
    link = await new_link(
        live,
        admin,
        message="Olá! Quero saber da promoção de Natal 🎄",
        cta_label="Fale conosco",
        cta_translations={"en": "Chat with us", "hi": "हमसे बात करें"},
        campaign="natal-2025",
        source="website header",
        slug="Promo-Natal",
        ref_code="xmas24",
    )
    assert link["slug"] == "promo-natal"
    assert link["short_url"] == f"{live.base_url}/c/promo-natal"
    assert link["ref_code"] == "XMAS24"
    assert link["text"] == "Olá! Quero saber da promoção de Natal 🎄 (ref: XMAS24)"
    assert link["phone"] == {
        "e164": "+5511987654321",
        "international": "+55 11 98765-4321",
        "digits": "5511987654321",
        "region": "BR",
    }
    target = urlsplit(link["wa_me_url"])
    assert (target.netloc, target.path) == ("wa.me", "/5511987654321")
    assert parse_qs(target.query) == {"text": [link["text"]]}
    assert link["status"] == "active" and link["name"] == "natal-2025 · website header"
    assert link["preview"] == {
        "business_name": None,
        "number": "+55 11 98765-4321",
        "text": link["text"],
        "cta_label": "Fale conosco",
    }
    assert link["widget"]["position"] == "bottom-right"
    got = await live.client.get(f"/api/v1/links/{link['id']}", headers=admin)
    assert got.json() == link


async def test_generated_slug_and_ref_and_inbox_number(live, admin):
    inbox = await create_inbox(live)
    numbers = (await live.client.get("/api/v1/links/numbers", headers=admin)).json()["items"]
    assert numbers == [
        {
            "inbox_id": inbox["id"],
            "inbox_name": f"WhatsApp {inbox['phone_number_id']}",
            "phone": {
                "e164": "+15550783881",
                "international": "+1 555-078-3881",
                "digits": "15550783881",
                "region": "US",
            },
        }
    ]
    link = await new_link(live, admin, phone=None, inbox_id=inbox["id"], message="Hi")
    assert link["phone"]["e164"] == "+15550783881"
    assert len(link["slug"]) == 7 and len(link["ref_code"]) == 6
    assert link["preview"]["business_name"] == f"WhatsApp {inbox['phone_number_id']}"
    mismatch = await live.client.post(
        "/api/v1/links", json={"phone": BR_NUMBER, "inbox_id": inbox["id"]}, headers=admin
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["code"] == "number_mismatch"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"phone": "12345"}, "invalid_phone", "phone"),
        ({}, "phone_required", "phone"),
        ({"phone": BR_NUMBER, "slug": "admin"}, "reserved_slug", "slug"),
        ({"phone": BR_NUMBER, "slug": "promo natal"}, "invalid_slug", "slug"),
        ({"phone": BR_NUMBER, "ref_code": "no-dashes"}, "invalid_ref_code", "ref_code"),
        ({"phone": BR_NUMBER, "message": "x" * 1001}, "message_too_long", "message"),
        ({"phone": BR_NUMBER, "message": "ส" * 600}, "message_too_long", "message"),
        ({"phone": BR_NUMBER, "inbox_id": 999}, "unknown_inbox", "inbox_id"),
        (
            {"phone": BR_NUMBER, "expires_at": "2001-01-01T00:00:00Z"},
            "expired",
            "expires_at",
        ),
    ],
)
async def test_invalid_links_are_refused_with_the_field(live, admin, body, code, field):
    response = await live.client.post("/api/v1/links", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == field


async def test_invalid_widget_settings_are_refused(live, admin):
    for widget in (
        {"color": "red"},
        {"position": "top"},
        {"hide_outside_hours": True},
        {"hours": {"time_zone": "Mars/Olympus", "days": {}}},
        {"hours": {"time_zone": "Asia/Kolkata", "days": {"mon": [["18:00", "09:00"]]}}},
        {"hours": {"time_zone": "Asia/Kolkata", "days": {"mon": [["09:00", "25:00"]]}}},
        {"hours": {"time_zone": "Asia/Kolkata", "days": {"xyz": [["09:00", "10:00"]]}}},
    ):
        response = await live.client.post(
            "/api/v1/links", json={"phone": BR_NUMBER, "widget": widget}, headers=admin
        )
        assert response.status_code == 422, widget


async def test_unique_slug_ref_and_ad(live, admin):
    await new_link(live, admin, slug="promo", ref_code="PROMO1", ad_source_id="120226305854810726")
    for body, field in (
        ({"slug": "PROMO"}, "slug"),
        ({"ref_code": "promo1"}, "ref_code"),
        ({"ad_source_id": "120226305854810726"}, "ad_source_id"),
    ):
        response = await live.client.post(
            "/api/v1/links", json={"phone": BR_NUMBER, **body}, headers=admin
        )
        assert response.status_code == 409
        assert response.json()["error"] == {
            "code": "link_conflict",
            "message": response.json()["error"]["message"],
            "field": field,
        }


async def test_update_deactivate_activate_and_audit(live, admin):
    link = await new_link(live, admin, slug="verao", message="Oi", campaign="verao")
    response = await live.client.patch(
        f"/api/v1/links/{link['id']}",
        json={"message": "Oi! Quero o cupom de verão ☀️", "slug": "verao-2026", "campaign": None},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["slug"] == "verao-2026" and changed["campaign"] is None
    assert changed["text"] == f"Oi! Quero o cupom de verão ☀️ (ref: {link['ref_code']})"
    off = await live.client.post(f"/api/v1/links/{link['id']}/deactivate", headers=admin)
    assert off.json()["status"] == "inactive" and off.json()["deactivated_at"]
    on = await live.client.post(f"/api/v1/links/{link['id']}/activate", headers=admin)
    assert on.json()["status"] == "active" and on.json()["deactivated_at"] is None
    async with live.runtime.db.session() as session:
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.target_type == "link", AuditEvent.target_id == str(link["id"]))
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [e.action for e in events] == [
        "link.create",
        "link.update",
        "link.deactivate",
        "link.activate",
    ]
    assert events[1].details["changes"]["slug"] == ["verao", "verao-2026"]
    assert events[1].details["changes"]["campaign"] == ["verao", None]
    assert all(e.actor_type == "token" for e in events)


async def test_expiry_shows_in_the_status(live, admin):
    # An hour ahead (a second was too close on a loaded machine: the request arrived after
    # it); the row is then moved into the past directly.
    later = (utcnow() + timedelta(hours=1)).isoformat()
    link = await new_link(live, admin, expires_at=later)
    assert link["status"] == "active"
    async with live.runtime.db.session() as session:
        from wadesk.links.models import Link

        row = await session.get(Link, link["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    got = await live.client.get(f"/api/v1/links/{link['id']}", headers=admin)
    assert got.json()["status"] == "expired"


async def test_agents_cannot_manage_links_and_supervisors_see_their_inboxes(live, admin):
    first = await create_inbox(live)
    second = await create_inbox(live, phone_number_id="222222222", app_secret="other")
    _, agent = await create_user(
        live, email="agent@example.com", role="agent", inbox_ids=(first["id"],)
    )
    _, supervisor = await create_user(
        live, email="sup@example.com", role="supervisor", inbox_ids=(first["id"],)
    )
    _, read_only = await create_user(
        live, email="ro@example.com", role="supervisor", scopes=("read",)
    )
    for method, path in (("GET", "/api/v1/links"), ("POST", "/api/v1/links")):
        response = await live.client.request(
            method, path, json={"phone": BR_NUMBER}, headers=auth(agent)
        )
        assert response.status_code == 403
    refused = await live.client.post(
        "/api/v1/links", json={"phone": BR_NUMBER}, headers=auth(read_only)
    )
    assert refused.status_code == 403
    mine = await new_link(live, auth(supervisor), phone=None, inbox_id=first["id"])
    general = await new_link(live, admin)
    other = await new_link(live, admin, phone=None, inbox_id=second["id"])
    not_mine = await live.client.post(
        "/api/v1/links", json={"inbox_id": second["id"]}, headers=auth(supervisor)
    )
    assert not_mine.status_code == 422
    listed = (await live.client.get("/api/v1/links", headers=auth(supervisor))).json()["items"]
    assert {item["id"] for item in listed} == {mine["id"], general["id"]}
    hidden = await live.client.get(f"/api/v1/links/{other['id']}", headers=auth(supervisor))
    assert hidden.status_code == 404
    for path in (f"/api/v1/links/{other['id']}/qr.svg", f"/api/v1/links/{other['id']}/stats"):
        assert (await live.client.get(path, headers=auth(supervisor))).status_code == 404
    patched = await live.client.patch(
        f"/api/v1/links/{other['id']}", json={"message": "x"}, headers=auth(supervisor)
    )
    assert patched.status_code == 404
    unauthenticated = await live.client.get("/api/v1/links")
    assert unauthenticated.status_code == 401


async def test_list_filters_and_pagination(live, admin):
    made = [
        await new_link(live, admin, campaign="a" if i % 2 else "b", slug=f"link-{i}")
        for i in range(5)
    ]
    page = (await live.client.get("/api/v1/links?limit=2", headers=admin)).json()
    assert [item["id"] for item in page["items"]] == [made[4]["id"], made[3]["id"]]
    rest = (
        await live.client.get(f"/api/v1/links?limit=10&cursor={page['next_cursor']}", headers=admin)
    ).json()
    assert [item["id"] for item in rest["items"]] == [m["id"] for m in reversed(made[:3])]
    assert rest["next_cursor"] is None
    by_campaign = (await live.client.get("/api/v1/links?campaign=a", headers=admin)).json()
    assert {item["slug"] for item in by_campaign["items"]} == {"link-1", "link-3"}
    await live.client.post(f"/api/v1/links/{made[0]['id']}/deactivate", headers=admin)
    active = (await live.client.get("/api/v1/links?active=false", headers=admin)).json()
    assert [item["id"] for item in active["items"]] == [made[0]["id"]]
    found = (await live.client.get("/api/v1/links?q=LINK-2", headers=admin)).json()
    assert [item["slug"] for item in found["items"]] == ["link-2"]


async def test_preview_validates_without_saving(live, admin):
    response = await live.client.post(
        "/api/v1/links/preview",
        json={"phone": "+91 98765 43210", "message": "नमस्ते 🙏", "ref_code": "DIWALI5"},
        headers=admin,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "नमस्ते 🙏 (ref: DIWALI5)"
    assert body["preview"]["number"] == "+91 98765 43210"
    assert body["url_length"] == len(body["wa_me_url"])
    assert (await live.client.get("/api/v1/links", headers=admin)).json()["items"] == []
    bad = await live.client.post("/api/v1/links/preview", json={"phone": "+91 12"}, headers=admin)
    assert bad.status_code == 422
