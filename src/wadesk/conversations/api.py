"""/api/v1/conversations and their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import FileResponse
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal
from wadesk.accounts.models import InboxMember, User
from wadesk.audit.actions import record_view
from wadesk.conversations.actions import (
    Keep,
    SendRefused,
    SendRequest,
    do_retry_message,
    do_send_message,
    do_update_conversation,
)
from wadesk.conversations.models import Conversation
from wadesk.conversations.queries import (
    conversations_out,
    get_conversation,
    get_visible_message,
    list_conversations,
    list_messages,
)
from wadesk.conversations.schemas import (
    ConversationOut,
    ConversationUpdate,
    MessageCreate,
    MessageOut,
    Status,
)
from wadesk.deps import Reader, RuntimeDep, SessionDep, Writer
from wadesk.errors import ApiError
from wadesk.pagination import Page, decode_cursor, decode_id_cursor, encode_cursor

router = APIRouter(tags=["conversations"])


async def _conversation_or_404(
    session: AsyncSession, principal: Principal, conversation_id: int, *, for_update: bool = False
) -> Conversation:
    conversation = await get_conversation(
        session, principal, conversation_id, for_update=for_update
    )
    if conversation is None:
        raise ApiError(404, "not_found", "No such conversation.")
    return conversation


@router.get("/conversations", response_model=Page[ConversationOut])
async def list_(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Reader,
    status: Status | None = None,
    inbox_id: Annotated[int | None, Query(ge=1)] = None,
    assignee: Annotated[
        str | None, Query(pattern=r"^(me|none|\d{1,18})$", description="'me', 'none' or a user id")
    ] = None,
    label: Annotated[str | None, Query(max_length=60, pattern=r"^[^\x00]*$")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[ConversationOut]:
    after = None
    if cursor:
        at, last_id = decode_cursor(cursor, (datetime, int))
        assert isinstance(at, datetime) and isinstance(last_id, int)
        after = (at, last_id)
    rows = await list_conversations(
        session,
        principal,
        status=status,
        inbox_id=inbox_id,
        assignee=assignee,
        label=label,
        after=after,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    items = await conversations_out(session, rows, runtime.settings.service_window_hours)
    next_cursor = encode_cursor(rows[-1].last_activity_at, rows[-1].id) if more else None
    return Page(items=items, next_cursor=next_cursor)


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
async def get(
    session: SessionDep, runtime: RuntimeDep, principal: Reader, conversation_id: int
) -> ConversationOut:
    conversation = await _conversation_or_404(session, principal, conversation_id)
    await record_view(session, principal.actor, "conversation", conversation.id)
    return (
        await conversations_out(session, [conversation], runtime.settings.service_window_hours)
    )[0]


@router.patch("/conversations/{conversation_id}", response_model=ConversationOut)
async def update(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Writer,
    conversation_id: int,
    body: ConversationUpdate,
) -> ConversationOut:
    conversation = await _conversation_or_404(session, principal, conversation_id, for_update=True)
    fields = body.model_fields_set
    assignee: int | Keep | None = Keep.KEEP
    if "assignee_id" in fields:
        assignee = body.assignee_id
        if assignee is not None:
            await _check_assignee(session, assignee, conversation.inbox_id)
    try:
        await do_update_conversation(
            session,
            actor=principal.actor,
            conversation=conversation,
            status=body.status,
            assignee_id=assignee,
            priority=body.priority,
            snoozed_until=body.snoozed_until,
            labels=body.labels,
        )
    except SendRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    return (
        await conversations_out(session, [conversation], runtime.settings.service_window_hours)
    )[0]


async def _check_assignee(session: AsyncSession, user_id: int, inbox_id: int) -> None:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise ApiError(422, "invalid_assignee", f"No active user with id {user_id}.")
    if user.role != "admin" and await session.get(InboxMember, (inbox_id, user_id)) is None:
        raise ApiError(
            422, "invalid_assignee", f"User {user_id} is not a member of this conversation's inbox."
        )


@router.get("/conversations/{conversation_id}/messages", response_model=Page[MessageOut])
async def messages(
    session: SessionDep,
    principal: Reader,
    conversation_id: int,
    cursor: Annotated[str | None, Query(max_length=500, description="Older messages")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[MessageOut]:
    await _conversation_or_404(session, principal, conversation_id)
    before = decode_id_cursor(cursor) if cursor else None
    rows = await list_messages(session, conversation_id, before_id=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=[MessageOut.model_validate(m) for m in rows],
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageOut,
    status_code=201,
    responses={200: {"description": "Replay of an earlier request with the same Idempotency-Key"}},
)
async def send(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Writer,
    conversation_id: int,
    body: MessageCreate,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(max_length=255, description="The same key never sends twice")
    ] = None,
) -> MessageOut:
    conversation = await _conversation_or_404(session, principal, conversation_id, for_update=True)
    try:
        message, created = await do_send_message(
            session,
            actor=principal.actor,
            conversation=conversation,
            request=SendRequest(
                type=body.type,
                text=body.text,
                content=body.content,
                reply_to_message_id=body.reply_to_message_id,
                media_link=body.media_link,
            ),
            service_window_hours=runtime.settings.service_window_hours,
            idempotency_key=idempotency_key,
        )
    except SendRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    if not created:
        response.status_code = 200
    return MessageOut.model_validate(message)


@router.post("/messages/{message_id}/retry", response_model=MessageOut)
async def retry(session: SessionDep, principal: Writer, message_id: int) -> MessageOut:
    message = await get_visible_message(session, principal, message_id)
    if message is None:
        raise ApiError(404, "not_found", "No such message.")
    try:
        await do_retry_message(session, actor=principal.actor, message=message)
    except SendRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    return MessageOut.model_validate(message)


@router.get(
    "/messages/{message_id}/media",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def media(
    session: SessionDep, runtime: RuntimeDep, principal: Reader, message_id: int
) -> FileResponse:
    message = await get_visible_message(session, principal, message_id)
    if message is None:
        raise ApiError(404, "not_found", "No such message.")
    if message.media_key is None:
        state = message.media_status or "none"
        raise ApiError(404, "media_not_stored", f"This message has no stored media ({state}).")
    path = runtime.media_store.path_of(message.media_key)
    if path is None:
        raise ApiError(404, "media_not_stored", "The media file is missing from the store.")
    return FileResponse(
        path,
        media_type=message.media_mime or "application/octet-stream",
        filename=message.media_filename or path.name,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
    )
