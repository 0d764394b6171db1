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
    do_add_note,
    do_create_label,
    do_delete_label,
    do_mark_mentions_read,
    do_mark_read,
    do_retry_message,
    do_send_message,
    do_update_conversation,
    do_update_label,
)
from wadesk.conversations.models import Conversation
from wadesk.conversations.queries import (
    conversations_out,
    folder_counts,
    get_conversation,
    get_label,
    get_visible_message,
    list_conversations,
    list_labels,
    list_mentions,
    list_messages,
)
from wadesk.conversations.schemas import (
    BatchError,
    BatchOut,
    BatchResult,
    ConversationOut,
    ConversationUpdate,
    Folder,
    FolderCounts,
    LabelCreate,
    LabelOut,
    LabelUpdate,
    MentionOut,
    MentionsRead,
    MessageBatch,
    MessageCreate,
    MessageOut,
    NoteCreate,
    Priority,
    Status,
)
from wadesk.db import utcnow
from wadesk.deps import Reader, RuntimeDep, SessionDep, Writer, require_permission
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
    folder: Annotated[
        Folder | None, Query(description="mine: assigned to me; unassigned; all (default)")
    ] = None,
    priority: Priority | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[^\x00]*$",
            description="Contact name or phone, or message text (3+ characters)",
        ),
    ] = None,
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
        folder=folder,
        priority=priority,
        q=q,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    items = await conversations_out(session, rows, runtime.settings.service_window_hours)
    next_cursor = encode_cursor(rows[-1].last_activity_at, rows[-1].id) if more else None
    return Page(items=items, next_cursor=next_cursor)


@router.get("/conversations/counts", response_model=FolderCounts)
async def counts(session: SessionDep, principal: Reader) -> FolderCounts:
    """Open conversations per folder (mine, unassigned, all) and how many have unread
    customer messages, limited to the inboxes the caller may see."""
    return FolderCounts(**await folder_counts(session, principal))


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
    # Commit before building the answer: a resolve that freed a slot holds routing's lock until
    # its commit, and every other resolve waits for it (measured: bench/routing.py).
    await session.commit()
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
                upload_id=body.upload_id,
            ),
            service_window_hours=runtime.settings.service_window_hours,
            idempotency_key=idempotency_key,
        )
    except SendRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    if not created:
        response.status_code = 200
    return MessageOut.model_validate(message)


@router.post("/conversations/{conversation_id}/messages/batch", response_model=BatchOut)
async def send_batch(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Writer,
    conversation_id: int,
    body: MessageBatch,
) -> BatchOut:
    """Several messages to one conversation in one request, in order, each with its own
    idempotency key: how the inbox empties an offline queue without one round trip per
    message. A refused message (window closed, bad content) is reported and the next one is
    tried, as separate requests would; a key another request is still using fails the whole
    batch with 409 so the client retries it, and nothing of it is kept."""
    conversation = await _conversation_or_404(session, principal, conversation_id, for_update=True)
    results: list[BatchResult] = []
    for item in body.messages:
        request = SendRequest(
            type=item.type,
            text=item.text,
            content=item.content,
            reply_to_message_id=item.reply_to_message_id,
            media_link=item.media_link,
            upload_id=item.upload_id,
        )
        try:
            async with session.begin_nested():
                message, created = await do_send_message(
                    session,
                    actor=principal.actor,
                    conversation=conversation,
                    request=request,
                    service_window_hours=runtime.settings.service_window_hours,
                    idempotency_key=item.idempotency_key,
                )
        except SendRefused as exc:
            if exc.code == "idempotency_key_in_use":
                raise ApiError(exc.status, exc.code, str(exc)) from exc
            results.append(
                BatchResult(
                    idempotency_key=item.idempotency_key,
                    status=exc.status,
                    error=BatchError(code=exc.code, message=str(exc)),
                )
            )
            continue
        results.append(
            BatchResult(
                idempotency_key=item.idempotency_key,
                status=201 if created else 200,
                message=MessageOut.model_validate(message),
            )
        )
    return BatchOut(results=results)


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


@router.post("/conversations/{conversation_id}/notes", response_model=MessageOut, status_code=201)
async def add_note(
    session: SessionDep, principal: Writer, conversation_id: int, body: NoteCreate
) -> MessageOut:
    """A private note: shown in the thread to the team, never sent to the customer.
    ``mentions`` (user ids) and ``@email`` / ``@name`` in the text notify those colleagues."""
    conversation = await _conversation_or_404(session, principal, conversation_id)
    try:
        message = await do_add_note(
            session,
            actor=principal.actor,
            conversation=conversation,
            text=body.text,
            mentions=body.mentions,
        )
    except SendRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    return MessageOut.model_validate(message)


@router.post("/conversations/{conversation_id}/read", response_model=ConversationOut)
async def mark_read(
    session: SessionDep, runtime: RuntimeDep, principal: Writer, conversation_id: int
) -> ConversationOut:
    """The caller read the conversation: its unread count goes to 0 (not audited)."""
    conversation = await _conversation_or_404(session, principal, conversation_id, for_update=True)
    await do_mark_read(session, actor=principal.actor, conversation=conversation)
    return (
        await conversations_out(session, [conversation], runtime.settings.service_window_hours)
    )[0]


# --- Labels ---------------------------------------------------------------------------------


@router.get("/labels", response_model=Page[LabelOut], tags=["labels"])
async def labels(session: SessionDep, principal: Reader) -> Page[LabelOut]:
    """Every label, by name (labels are shared by all inboxes; there is no next page)."""
    return Page(items=[LabelOut.model_validate(label) for label in await list_labels(session)])


@router.post("/labels", response_model=LabelOut, status_code=201, tags=["labels"])
async def create_label(
    session: SessionDep,
    principal: Annotated[Principal, require_permission("labels.write")],
    body: LabelCreate,
) -> LabelOut:
    try:
        label = await do_create_label(
            session, actor=principal.actor, name=body.name, color=body.color
        )
    except SendRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    return LabelOut.model_validate(label)


@router.patch("/labels/{label_id}", response_model=LabelOut, tags=["labels"])
async def update_label(
    session: SessionDep,
    principal: Annotated[Principal, require_permission("labels.write")],
    label_id: int,
    body: LabelUpdate,
) -> LabelOut:
    label = await get_label(session, label_id)
    if label is None:
        raise ApiError(404, "not_found", "No such label.")
    try:
        await do_update_label(
            session, actor=principal.actor, label=label, name=body.name, color=body.color
        )
    except SendRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    return LabelOut.model_validate(label)


@router.delete("/labels/{label_id}", status_code=204, tags=["labels"])
async def delete_label(
    session: SessionDep,
    principal: Annotated[Principal, require_permission("labels.delete")],
    label_id: int,
) -> Response:
    label = await get_label(session, label_id)
    if label is None:
        raise ApiError(404, "not_found", "No such label.")
    await do_delete_label(session, actor=principal.actor, label=label)
    return Response(status_code=204)


# --- Mentions -------------------------------------------------------------------------------


@router.get("/mentions", response_model=Page[MentionOut], tags=["mentions"])
async def mentions(
    session: SessionDep,
    principal: Reader,
    unread: Annotated[bool, Query(description="Only unread mentions")] = False,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[MentionOut]:
    """My mentions in notes: unread first, then newest first."""
    after = None
    if cursor:
        flag, last_id = decode_cursor(cursor, (int, int))
        assert isinstance(flag, int) and isinstance(last_id, int)
        after = (flag, last_id)
    rows = await list_mentions(session, principal, unread_only=unread, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(0 if rows[-1].read_at is None else 1, rows[-1].id) if more else None
    return Page(items=rows, next_cursor=next_cursor)


@router.post("/mentions/read", tags=["mentions"])
async def mentions_read(
    session: SessionDep, principal: Writer, body: MentionsRead
) -> dict[str, int]:
    """Mark my mentions read: the given ids, or all of them. Returns how many changed."""
    changed = await do_mark_mentions_read(
        session, actor=principal.actor, user_id=principal.user_id, mention_ids=body.ids
    )
    return {"marked": changed}


@router.post("/mentions/{mention_id}/read", response_model=MentionOut, tags=["mentions"])
async def mention_read(session: SessionDep, principal: Writer, mention_id: int) -> MentionOut:
    found = await list_mentions(session, principal, mention_id=mention_id, limit=1)
    if not found:
        raise ApiError(404, "not_found", "No such mention of yours.")
    await do_mark_mentions_read(
        session, actor=principal.actor, user_id=principal.user_id, mention_ids=[mention_id]
    )
    return found[0].model_copy(update={"read_at": found[0].read_at or utcnow()})
