"""State changes of inboxes (connecting and reconfiguring channels)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.actions import Actor, record
from wadesk.config import Settings
from wadesk.db import queue_event
from wadesk.inboxes.models import Inbox


class InboxError(ValueError):
    pass


def webhook_url(settings: Settings, inbox: Inbox) -> str:
    return f"{settings.base_url.rstrip('/')}/webhooks/whatsapp/{inbox.webhook_key}"


async def do_create_whatsapp_inbox(
    session: AsyncSession,
    *,
    actor: Actor,
    settings: Settings,
    name: str,
    phone_number_id: str,
    waba_id: str | None,
    access_token: str,
    app_secret: str,
    verify_token: str | None,
    display_phone_number: str | None = None,
    graph_url: str | None = None,
    api_version: str | None = None,
) -> Inbox:
    if not phone_number_id.isdigit():
        raise InboxError("phone_number_id is the numeric id Meta shows for the number")
    existing = await session.scalar(
        select(Inbox.id).where(
            Inbox.channel_type == "whatsapp", Inbox.external_account_id == phone_number_id
        )
    )
    if existing is not None:
        raise InboxError(f"inbox {existing} already uses phone_number_id {phone_number_id}")
    inbox = Inbox(
        name=name,
        channel_type="whatsapp",
        external_account_id=phone_number_id,
        business_account_id=waba_id,
        display_phone_number=display_phone_number,
        graph_url=(graph_url or settings.graph_url).rstrip("/"),
        api_version=api_version or settings.graph_api_version,
        access_token=access_token,
        app_secret=app_secret,
        verify_token=verify_token or secrets.token_urlsafe(24),
        webhook_key=secrets.token_urlsafe(18),
        needs_attention=False,
        settings={},
    )
    session.add(inbox)
    await session.flush()
    await record(
        session,
        actor,
        "inbox.create",
        "inbox",
        inbox.id,
        {"name": name, "channel_type": "whatsapp", "phone_number_id": phone_number_id},
    )
    queue_event(session, "inbox.created", {"inbox_id": inbox.id})
    return inbox


async def do_update_inbox_credentials(
    session: AsyncSession,
    *,
    actor: Actor,
    inbox: Inbox,
    access_token: str | None = None,
    app_secret: str | None = None,
    verify_token: str | None = None,
    name: str | None = None,
) -> Inbox:
    changed = []
    for field, value in (
        ("access_token", access_token),
        ("app_secret", app_secret),
        ("verify_token", verify_token),
        ("name", name),
    ):
        if value is not None:
            setattr(inbox, field, value)
            changed.append(field)
    if access_token is not None:
        inbox.needs_attention, inbox.attention_reason = False, None
    if changed:
        # Field names only: secrets never reach the audit log.
        await record(session, actor, "inbox.update", "inbox", inbox.id, {"fields": changed})
        queue_event(session, "inbox.updated", {"inbox_id": inbox.id})
    return inbox
