"""/api/v1/audit-events: read, export (CSV) and verify the audit trail. Admins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from wadesk.accounts.access import Principal
from wadesk.audit.actions import record
from wadesk.audit.chainer import chain_pending
from wadesk.audit.queries import AuditFilter, actor_names, export_csv, list_events, verify_chain
from wadesk.audit.schemas import AuditEventOut, ChainReport
from wadesk.db import utcnow
from wadesk.deps import CurrentPrincipal, RuntimeDep, SessionDep, require_permission
from wadesk.errors import ApiError
from wadesk.pagination import MAX_ID, Page, decode_id_cursor, encode_cursor

router = APIRouter(prefix="/audit-events", tags=["audit"])
Auditor = Annotated[Principal, require_permission("audit.read")]


async def _audit_scope(session: SessionDep, principal: CurrentPrincipal) -> Principal:
    """audit.read (admins): everything; audit.team (supervisors): see team_scope()."""
    if not (principal.can("audit.read") or principal.can("audit.team")):
        raise ApiError(403, "forbidden", "You lack the 'audit.read' permission.")
    return principal


TeamAuditor = Annotated[Principal, Depends(_audit_scope)]


async def team_scope(session: SessionDep, principal: Principal) -> frozenset[int] | None:
    """None for auditors; for a supervisor, the members of the teams they supervise."""
    if principal.can("audit.read"):
        return None
    from wadesk.teams.queries import supervised_user_ids

    return frozenset(await supervised_user_ids(session, principal.user_id))


def audit_filter(
    user_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="A person (with their tokens)")
    ] = None,
    actor_type: Annotated[
        str | None, Query(pattern=r"^(user|token|system|customer|anonymous)$")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=80, description="An action, or a prefix ending in '.'")
    ] = None,
    target_type: Annotated[str | None, Query(max_length=40)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    conversation_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditFilter:
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise ApiError(422, "invalid_request", "since/until need a time zone (…Z).")
    return AuditFilter(
        user_id=user_id,
        actor_type=actor_type,
        action=action,
        target_type=target_type,
        target_id=target_id,
        conversation_id=conversation_id,
        since=since,
        until=until,
    )


@router.get("", response_model=Page[AuditEventOut])
async def list_(
    session: SessionDep,
    principal: TeamAuditor,
    user_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="A person (with their tokens)")
    ] = None,
    actor_type: Annotated[
        str | None, Query(pattern=r"^(user|token|system|customer|anonymous)$")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=80, description="An action, or a prefix ending in '.'")
    ] = None,
    target_type: Annotated[str | None, Query(max_length=40)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    conversation_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[AuditEventOut]:
    """Newest first. Supervisors: actions by members of the teams they supervise."""
    f = replace(
        audit_filter(
            user_id, actor_type, action, target_type, target_id, conversation_id, since, until
        ),
        within_user_ids=await team_scope(session, principal),
    )
    rows = await list_events(
        session, f, before_id=decode_id_cursor(cursor) if cursor else None, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    names = await actor_names(session, rows)
    items = [
        AuditEventOut.model_validate(e).model_copy(
            update={"actor": names.get(f"{e.actor_type}:{e.actor_id}")}
        )
        for e in rows
    ]
    return Page(items=items, next_cursor=encode_cursor(rows[-1].id) if more else None)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: TeamAuditor,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    actor_type: Annotated[
        str | None, Query(pattern=r"^(user|token|system|customer|anonymous)$")
    ] = None,
    action: Annotated[str | None, Query(max_length=80)] = None,
    target_type: Annotated[str | None, Query(max_length=40)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    conversation_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    """The filtered events as CSV, oldest first. The export itself is audited."""
    f = replace(
        audit_filter(
            user_id, actor_type, action, target_type, target_id, conversation_id, since, until
        ),
        within_user_ids=await team_scope(session, principal),
    )
    await record(session, principal.actor, "audit.export", None, None, {"filter": f.as_dict()})
    return csv_response(runtime, f)


def csv_response(runtime: RuntimeDep, f: AuditFilter) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        # The request's session is committed and released before the body streams.
        async with runtime.db.session() as session:
            async for chunk in export_csv(session, f):
                yield chunk

    name = f"wadesk-audit-{utcnow().strftime('%Y%m%dT%H%M%SZ')}.csv"
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/verify", response_model=ChainReport)
async def verify(session: SessionDep, runtime: RuntimeDep, _principal: Auditor) -> ChainReport:
    """Check the whole hash chain (it reads every row: minutes on a very large log)."""
    key = runtime.settings.resolved_secret_key()
    await chain_pending(runtime.db, key)
    result = await verify_chain(session, key)
    return ChainReport(
        ok=result.ok,
        checked=result.checked,
        head=result.head,
        broken_row_id=result.broken.row_id if result.broken else None,
        reason=result.broken.reason if result.broken else None,
        unchained=result.unchained,
    )
