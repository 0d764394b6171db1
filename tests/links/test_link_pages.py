"""The link builder's pages: build with the form (and its server-side preview), see the QR code,
snippets and figures, edit, turn off; the same rules as the API, and only for managers."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from tests.helpers import create_inbox, create_user
from tests.web.client import csrf_of, sign_in
from wadesk.audit.models import AuditEvent
from wadesk.links.models import Link

FORM = {
    "inbox_id": "",
    "phone": "+55 11 98765-4321",
    "message": "Olá! Quero a promoção de Natal 🎄 <script>alert(1)</script>",
    "cta_label": "Fale conosco",
    "campaign": "natal-2026",
    "source": "email signature",
    "slug": "promo-natal",
    "include_ref": "on",
    "ref_label": "ref",
    "widget_color": "#25D366",
    "widget_position": "bottom-right",
}


async def _post(client: Any, page: str, action: str, data: dict[str, str]) -> Any:
    html = (await client.get(page)).text
    return await client.post(action, data={"csrf_token": csrf_of(html), **data})


async def test_build_preview_create_share_edit_deactivate(live):
    await create_user(live, email="sup@example.com", role="supervisor")
    client = await sign_in(live, "sup@example.com")

    listing = await client.get("/links")
    assert listing.status_code == 200 and "No links yet" in listing.text

    # The server-side preview (the page's "Preview" button) saves nothing.
    preview = await _post(client, "/links/new", "/links/new", {**FORM, "action": "preview"})
    assert preview.status_code == 200
    assert "https://wa.me/5511987654321?text=Ol%C3%A1%21" in preview.text
    assert "<script>alert(1)</script>" not in preview.text  # escaped, never markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in preview.text
    async with live.runtime.db.session() as session:
        assert (await session.scalars(select(Link))).all() == []

    created = await _post(client, "/links/new", "/links/new", {**FORM, "action": "save"})
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    assert re.fullmatch(r"/links/\d+\?notice=link_created", location)
    detail = await client.get(location)
    assert detail.status_code == 200
    assert f"{live.base_url}/c/promo-natal" in detail.text
    assert 'src="/api/v1/links/' in detail.text and "qr.svg" in detail.text
    assert "&lt;script src=" in detail.text  # the website button snippet, shown as text
    assert "natal-2026" in detail.text
    link_id = int(location.split("/")[2].split("?")[0])

    # The QR code the page shows is served to the same session.
    qr = await client.get(f"/api/v1/links/{link_id}/qr.svg?ecc=Q")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")

    edit_page = f"/links/{link_id}/edit"
    edited = await _post(
        client,
        edit_page,
        edit_page,
        {
            **FORM,
            "message": "Oi de novo",
            "campaign": "",
            "cta_translations": "en = Talk to us\nhi = हमसे बात करें",
        },
    )
    assert edited.status_code == 303, edited.text
    async with live.runtime.db.session() as session:
        link = await session.get(Link, link_id)
        assert link is not None
        assert link.message == "Oi de novo" and link.campaign is None
        assert link.cta_translations == {"en": "Talk to us", "hi": "हमसे बात करें"}
        assert link.slug == "promo-natal"

    off = await _post(client, f"/links/{link_id}", f"/links/{link_id}/deactivate", {})
    assert off.status_code == 303
    redirect = await live.client.get("/c/promo-natal", follow_redirects=False)
    assert redirect.status_code == 410
    on = await _post(client, f"/links/{link_id}", f"/links/{link_id}/activate", {})
    assert on.status_code == 303
    assert (await live.client.get("/c/promo-natal", follow_redirects=False)).status_code == 302

    async with live.runtime.db.session() as session:
        actions = (
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.target_type == "link")
                .order_by(AuditEvent.id)
            )
        ).all()
    assert actions == ["link.create", "link.update", "link.deactivate", "link.activate"]
    await client.aclose()


async def test_form_errors_keep_what_was_typed(live):
    await create_user(live, email="admin@example.com", role="admin")
    client = await sign_in(live, "admin@example.com")
    bad_phone = await _post(client, "/links/new", "/links/new", {**FORM, "phone": "12"})
    assert bad_phone.status_code == 422
    assert 'role="alert"' in bad_phone.text
    assert "Quero a promoção" in bad_phone.text  # the form keeps the text
    assert 'aria-invalid="true"' in bad_phone.text

    assert (await _post(client, "/links/new", "/links/new", FORM)).status_code == 303
    taken = await _post(client, "/links/new", "/links/new", FORM)
    assert taken.status_code == 409 and "promo-natal" in taken.text

    bad_slug = await _post(client, "/links/new", "/links/new", {**FORM, "slug": "../evil"})
    assert bad_slug.status_code == 422

    bad_date = await _post(
        client, "/links/new", "/links/new", {**FORM, "slug": "", "expires_on": "tomorrow"}
    )
    assert bad_date.status_code == 422 and "date" in bad_date.text

    bad_translation = await _post(
        client, "/links/new", "/links/new", {**FORM, "slug": "", "cta_translations": "Talk"}
    )
    assert bad_translation.status_code == 422 and "line 1" in bad_translation.text

    no_csrf = await client.post("/links/new", data=FORM)
    assert no_csrf.status_code == 403
    await client.aclose()


async def test_inbox_numbers_are_offered_and_agents_are_kept_out(live):
    inbox = await create_inbox(live)
    await create_user(live, email="admin@example.com", role="admin")
    admin = await sign_in(live, "admin@example.com")
    page = await admin.get("/links/new")
    assert f'<option value="{inbox["id"]}" selected>' in page.text
    created = await _post(
        admin,
        "/links/new",
        "/links/new",
        {**FORM, "inbox_id": str(inbox["id"]), "phone": "", "slug": "from-inbox"},
    )
    assert created.status_code == 303, created.text
    async with live.runtime.db.session() as session:
        link = await session.scalar(select(Link).where(Link.slug == "from-inbox"))
        assert link is not None and link.inbox_id == inbox["id"]
        assert link.phone_e164 == "+15550783881"

    await create_user(live, email="agent@example.com", role="agent")
    agent = await sign_in(live, "agent@example.com")
    for path in ("/links", "/links/new", f"/links/{link.id}", f"/links/{link.id}/edit"):
        response = await agent.get(path)
        assert response.status_code == 403, path
        assert "from-inbox" not in response.text
    await admin.aclose()
    await agent.aclose()
