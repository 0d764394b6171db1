"""/api/v1/inboxes"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from wadesk.config import Settings
from wadesk.deps import Admin, Reader, RuntimeDep, SessionDep
from wadesk.errors import ApiError
from wadesk.inboxes.actions import (
    InboxError,
    do_create_whatsapp_inbox,
    do_update_inbox_credentials,
    webhook_url,
)
from wadesk.inboxes.models import Inbox
from wadesk.inboxes.schemas import InboxOut, InboxUpdate, WhatsAppInboxCreate
from wadesk.pagination import Page

router = APIRouter(prefix="/inboxes", tags=["inboxes"])


def inbox_out(settings: Settings, inbox: Inbox) -> InboxOut:
    return InboxOut(
        id=inbox.id,
        name=inbox.name,
        channel_type=inbox.channel_type,
        phone_number_id=inbox.external_account_id,
        waba_id=inbox.business_account_id,
        display_phone_number=inbox.display_phone_number,
        graph_url=inbox.graph_url,
        api_version=inbox.api_version,
        webhook_url=webhook_url(settings, inbox),
        needs_attention=inbox.needs_attention,
        attention_reason=inbox.attention_reason,
        created_at=inbox.created_at,
    )


@router.get("", response_model=Page[InboxOut])
async def list_(session: SessionDep, runtime: RuntimeDep, principal: Reader) -> Page[InboxOut]:
    rows = await session.scalars(
        select(Inbox).where(principal.inbox_filter(Inbox.id)).order_by(Inbox.id)
    )
    return Page(items=[inbox_out(runtime.settings, i) for i in rows.all()])


@router.get("/{inbox_id}", response_model=InboxOut)
async def get(
    session: SessionDep, runtime: RuntimeDep, principal: Reader, inbox_id: int
) -> InboxOut:
    inbox = await session.get(Inbox, inbox_id)
    if inbox is None or not principal.can_see_inbox(inbox.id):
        raise ApiError(404, "not_found", "No such inbox.")
    return inbox_out(runtime.settings, inbox)


@router.post("/whatsapp", response_model=InboxOut, status_code=201)
async def create_whatsapp(
    session: SessionDep, runtime: RuntimeDep, principal: Admin, body: WhatsAppInboxCreate
) -> InboxOut:
    try:
        inbox = await do_create_whatsapp_inbox(
            session,
            actor=principal.actor,
            settings=runtime.settings,
            name=body.name,
            phone_number_id=body.phone_number_id,
            waba_id=body.waba_id,
            access_token=body.access_token,
            app_secret=body.app_secret,
            verify_token=body.verify_token,
            display_phone_number=body.display_phone_number,
            graph_url=body.graph_url,
        )
    except InboxError as exc:
        raise ApiError(409, "inbox_conflict", str(exc)) from exc
    return inbox_out(runtime.settings, inbox)


@router.patch("/{inbox_id}", response_model=InboxOut)
async def update(
    session: SessionDep, runtime: RuntimeDep, principal: Admin, inbox_id: int, body: InboxUpdate
) -> InboxOut:
    inbox = await session.get(Inbox, inbox_id)
    if inbox is None:
        raise ApiError(404, "not_found", "No such inbox.")
    await do_update_inbox_credentials(
        session, actor=principal.actor, inbox=inbox, **body.model_dump(exclude_unset=True)
    )
    return inbox_out(runtime.settings, inbox)
