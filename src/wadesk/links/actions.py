"""State changes of links: create (rate-limited per person), update, deactivate. Every change
is audited and announced (``link.changed``) after commit, so short-link caches drop it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.models import User
from wadesk.audit.actions import Actor, record
from wadesk.db import queue_event, utcnow
from wadesk.inboxes.models import Inbox
from wadesk.links.models import Link
from wadesk.links.rules import (
    BusinessNumber,
    LinkInvalid,
    business_number,
    checked_wa_me_url,
    generate_ref,
    generate_slug,
    normalize_label,
    normalize_message,
    normalize_optional,
    normalize_ref,
    normalize_ref_label,
    normalize_slug,
    normalize_translations,
    prefilled_text,
)
from wadesk.links.schemas import DEFAULT_CTA, WidgetSettings

RATE_WINDOW = timedelta(hours=1)
# Fields a caller may set; the rest (ids, times, creator) are the system's.
EDITABLE = (
    "name",
    "phone",
    "region",
    "inbox_id",
    "message",
    "cta_label",
    "cta_translations",
    "campaign",
    "source",
    "slug",
    "ref_code",
    "include_ref",
    "ref_label",
    "ad_source_id",
    "expires_at",
    "widget",
)


class LinkConflict(ValueError):
    """A unique field (slug, reference code, ad id) is taken by another link."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class LinkRateLimited(Exception):
    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"At most {limit} links an hour per person; try again in {retry_after} s.")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Draft:
    """A link's fields, validated and normalized; ``slug``/``ref_code`` None: to generate."""

    name: str | None
    number: BusinessNumber
    inbox: Inbox | None
    message: str
    cta_label: str
    cta_translations: dict[str, str]
    campaign: str | None
    source: str | None
    slug: str | None
    ref_code: str | None
    include_ref: bool
    ref_label: str
    ad_source_id: str | None
    expires_at: datetime | None
    widget: dict[str, Any]

    def text(self, ref_code: str) -> str:
        return prefilled_text(
            self.message, ref_code, include_ref=self.include_ref, ref_label=self.ref_label
        )

    def url(self, ref_code: str) -> str:
        return checked_wa_me_url(self.number.digits, self.text(ref_code))


async def validate_draft(
    session: AsyncSession, values: dict[str, Any], current: Link | None = None
) -> Draft:
    """Validate a link's fields: ``values`` are the ones given, over ``current``'s."""

    def pick(field: str, current_value: Any, default: Any = None) -> Any:
        """The given value (None: back to the default), else the current one."""
        if field in values:
            return default if values[field] is None else values[field]
        return current_value if current is not None else default

    inbox_id = pick("inbox_id", current.inbox_id if current else None)
    inbox = None
    if inbox_id is not None:
        inbox = await session.get(Inbox, inbox_id)
        if inbox is None:
            raise LinkInvalid("inbox_id", "unknown_inbox", f"No inbox with id {inbox_id}.")
    phone = values.get("phone")
    number: BusinessNumber | None = None
    if phone:
        number = business_number(phone, values.get("region"))
    elif current is not None and "phone" not in values:
        number = business_number(current.phone_e164, strict=False)
    inbox_number = _inbox_number(inbox)
    if number is None:
        if inbox_number is None:
            raise LinkInvalid(
                "phone",
                "phone_required",
                "Give the business number, or an inbox whose number is known.",
            )
        number = inbox_number
    elif inbox_number is not None and inbox_number.digits != number.digits:
        raise LinkInvalid(
            "phone",
            "number_mismatch",
            f"{number.international} is not the number of inbox {inbox_id}"
            f" ({inbox_number.international}): conversations would not reach it.",
        )
    expires_at = pick("expires_at", current.expires_at if current else None)
    if "expires_at" in values and expires_at is not None and expires_at <= utcnow():
        raise LinkInvalid("expires_at", "expired", "expires_at is in the past.")
    widget = pick("widget", current.widget if current else None)
    if isinstance(widget, WidgetSettings):
        widget = widget.model_dump(mode="json")
    slug = pick("slug", current.slug if current else None)
    ref_code = pick("ref_code", current.ref_code if current else None)
    ad_source_id = pick("ad_source_id", current.ad_source_id if current else None)
    return Draft(
        name=normalize_optional(pick("name", current.name if current else None), "name", 200),
        number=number,
        inbox=inbox,
        message=normalize_message(pick("message", current.message if current else "", "")),
        cta_label=normalize_label(
            pick("cta_label", current.cta_label if current else None, DEFAULT_CTA),
            "cta_label",
            60,
        ),
        cta_translations=normalize_translations(
            pick("cta_translations", current.cta_translations if current else None, {})
        ),
        campaign=normalize_optional(
            pick("campaign", current.campaign if current else None), "campaign", 100
        ),
        source=normalize_optional(
            pick("source", current.source if current else None), "source", 100
        ),
        slug=normalize_slug(slug) if slug else None,
        ref_code=normalize_ref(ref_code) if ref_code else None,
        include_ref=bool(pick("include_ref", current.include_ref if current else None, True)),
        ref_label=normalize_ref_label(
            pick("ref_label", current.ref_label if current else None, "ref")
        ),
        ad_source_id=ad_source_id.strip() or None if ad_source_id else None,
        expires_at=expires_at,
        widget=WidgetSettings.model_validate(widget or {}).model_dump(mode="json"),
    )


def _inbox_number(inbox: Inbox | None) -> BusinessNumber | None:
    if inbox is None or not inbox.display_phone_number:
        return None
    try:
        return business_number(inbox.display_phone_number, strict=False)
    except LinkInvalid:
        return None


async def _check_rate(session: AsyncSession, user_id: int, per_hour: int) -> None:
    """At most ``per_hour`` links per person in any hour; the state is the links table."""
    if session.bind.dialect.name == "postgresql":
        # One creator at a time per person: two requests cannot both take the last slot.
        await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    now = utcnow()
    recent = (
        await session.scalars(
            select(Link.created_at)
            .where(Link.created_by_user_id == user_id, Link.created_at > now - RATE_WINDOW)
            .order_by(Link.created_at)
            .limit(per_hour)
        )
    ).all()
    if len(recent) >= per_hour:
        retry_after = max(1, math.ceil((recent[0] + RATE_WINDOW - now).total_seconds()))
        raise LinkRateLimited(per_hour, retry_after)


async def _taken(session: AsyncSession, field: str, value: str, except_id: int | None) -> bool:
    column = getattr(Link, field)
    query = select(Link.id).where(column == value)
    if except_id is not None:
        query = query.where(Link.id != except_id)
    return (await session.scalar(query.limit(1))) is not None


async def _unique_or_conflict(session: AsyncSession, draft: Draft, except_id: int | None) -> None:
    for field, value in (
        ("slug", draft.slug),
        ("ref_code", draft.ref_code),
        ("ad_source_id", draft.ad_source_id),
    ):
        if value is not None and await _taken(session, field, value, except_id):
            raise LinkConflict(field, f"Another link already uses {field} {value!r}.")


async def _generated(session: AsyncSession, field: str) -> str:
    make = generate_slug if field == "slug" else generate_ref
    for _ in range(20):
        value = make()
        if not await _taken(session, field, value, None):
            return value
    raise LinkConflict(field, f"Could not generate a free {field}; give one.")


async def _flush_unique(session: AsyncSession) -> None:
    """Flush; a unique key that a concurrent request just took becomes a LinkConflict."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        text = str(exc.orig).lower()
        field = next((f for f in ("slug", "ref_code", "ad_source_id") if f in text), "slug")
        raise LinkConflict(field, f"Another link just took this {field}; choose another.") from exc


async def do_create_link(
    session: AsyncSession,
    *,
    actor: Actor,
    values: dict[str, Any],
    per_hour: int,
) -> Link:
    """Create a link from API/CLI values (see schemas.LinkCreate)."""
    if actor.user_id is not None:
        await _check_rate(session, actor.user_id, per_hour)
    draft = await validate_draft(session, values)
    await _unique_or_conflict(session, draft, None)
    slug = draft.slug or await _generated(session, "slug")
    ref_code = draft.ref_code or await _generated(session, "ref_code")
    draft.url(ref_code)  # the encoded length is checked before anything is written
    now = utcnow()
    link = Link(
        name=draft.name or " · ".join(p for p in (draft.campaign, draft.source) if p) or slug,
        slug=slug,
        ref_code=ref_code,
        include_ref=draft.include_ref,
        ref_label=draft.ref_label,
        phone_e164=draft.number.e164,
        inbox_id=draft.inbox.id if draft.inbox else None,
        message=draft.message,
        cta_label=draft.cta_label,
        cta_translations=draft.cta_translations,
        campaign=draft.campaign,
        source=draft.source,
        ad_source_id=draft.ad_source_id,
        widget=draft.widget,
        expires_at=draft.expires_at,
        is_active=True,
        created_by_user_id=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(link)
    await _flush_unique(session)
    await record(
        session,
        actor,
        "link.create",
        "link",
        link.id,
        {
            "slug": link.slug,
            "ref_code": link.ref_code,
            "phone": link.phone_e164,
            "inbox_id": link.inbox_id,
            "campaign": link.campaign,
        },
    )
    queue_event(session, "link.changed", {"link_id": link.id, "slugs": [link.slug]})
    return link


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def do_update_link(
    session: AsyncSession, *, actor: Actor, link: Link, values: dict[str, Any]
) -> Link:
    """Change a link; ``values`` holds only the fields to change (``is_active`` included)."""
    is_active = values.pop("is_active", None)
    draft = await validate_draft(session, values, current=link)
    await _unique_or_conflict(session, draft, link.id)
    ref_code = draft.ref_code or link.ref_code
    draft.url(ref_code)
    after: dict[str, Any] = {
        "name": draft.name or link.name,
        "slug": draft.slug or link.slug,
        "ref_code": ref_code,
        "include_ref": draft.include_ref,
        "ref_label": draft.ref_label,
        "phone_e164": draft.number.e164,
        "inbox_id": draft.inbox.id if draft.inbox else None,
        "message": draft.message,
        "cta_label": draft.cta_label,
        "cta_translations": draft.cta_translations,
        "campaign": draft.campaign,
        "source": draft.source,
        "ad_source_id": draft.ad_source_id,
        "widget": draft.widget,
        "expires_at": draft.expires_at,
    }
    now = utcnow()
    if is_active is not None and is_active != link.is_active:
        after["is_active"] = is_active
        after["deactivated_at"] = None if is_active else now
    changes = {
        field: [_jsonable(getattr(link, field)), _jsonable(value)]
        for field, value in after.items()
        if getattr(link, field) != value
    }
    if not changes:
        return link
    old_slug = link.slug
    for field, value in after.items():
        setattr(link, field, value)
    link.updated_at = now
    await _flush_unique(session)
    action = "link.update"
    if set(changes) <= {"is_active", "deactivated_at"}:
        action = "link.activate" if link.is_active else "link.deactivate"
    await record(session, actor, action, "link", link.id, {"changes": changes})
    queue_event(
        session, "link.changed", {"link_id": link.id, "slugs": sorted({old_slug, link.slug})}
    )
    return link


async def do_deactivate_link(session: AsyncSession, *, actor: Actor, link: Link) -> Link:
    """Stop a link: its short URL answers 410 from now on (reactivate with an update)."""
    return await do_update_link(session, actor=actor, link=link, values={"is_active": False})
