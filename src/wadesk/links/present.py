"""A link as the API, the CLI and the snippets show it: URLs, status, the WhatsApp preview."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from wadesk.db import utcnow
from wadesk.links.models import Link
from wadesk.links.rules import business_number, prefilled_text, wa_me_url
from wadesk.links.schemas import (
    BusinessNumberOut,
    LinkOut,
    WhatsAppPreview,
    WidgetSettings,
)


def short_url(base_url: str, slug: str) -> str:
    return f"{base_url.rstrip('/')}/c/{slug}"


def link_text(link: Link) -> str:
    return prefilled_text(
        link.message, link.ref_code, include_ref=link.include_ref, ref_label=link.ref_label
    )


def link_target(link: Link) -> str:
    """The wa.me URL a link leads to (built from digits and text only: never an open redirect)."""
    return wa_me_url(link.phone_e164.lstrip("+"), link_text(link))


LinkStatus = Literal["active", "expired", "inactive"]


def link_status(link: Link, now: datetime | None = None) -> LinkStatus:
    if not link.is_active:
        return "inactive"
    if link.expires_at is not None and link.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def number_out(e164: str) -> BusinessNumberOut:
    number = business_number(e164, strict=False)
    return BusinessNumberOut(
        e164=number.e164,
        international=number.international,
        digits=number.digits,
        region=number.region,
    )


def link_out(link: Link, *, base_url: str, inbox_name: str | None) -> LinkOut:
    phone = number_out(link.phone_e164)
    text = link_text(link)
    return LinkOut(
        id=link.id,
        name=link.name,
        slug=link.slug,
        short_url=short_url(base_url, link.slug),
        wa_me_url=link_target(link),
        status=link_status(link),
        phone=phone,
        inbox_id=link.inbox_id,
        message=link.message,
        text=text,
        ref_code=link.ref_code,
        include_ref=link.include_ref,
        ref_label=link.ref_label,
        cta_label=link.cta_label,
        cta_translations=dict(link.cta_translations or {}),
        campaign=link.campaign,
        source=link.source,
        ad_source_id=link.ad_source_id,
        widget=WidgetSettings.model_validate(link.widget or {}),
        expires_at=link.expires_at,
        is_active=link.is_active,
        created_by_user_id=link.created_by_user_id,
        created_at=link.created_at,
        updated_at=link.updated_at,
        deactivated_at=link.deactivated_at,
        preview=WhatsAppPreview(
            business_name=inbox_name,
            number=phone.international,
            text=text,
            cta_label=link.cta_label,
        ),
    )
