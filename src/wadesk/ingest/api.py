"""/api/v1/webhook-deliveries: what the providers sent, for admins (unprocessable ones, replay)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from wadesk.deps import Admin, SessionDep
from wadesk.ingest.actions import do_replay_deliveries
from wadesk.ingest.models import WebhookDelivery
from wadesk.pagination import Page, decode_id_cursor, encode_cursor

router = APIRouter(prefix="/webhook-deliveries", tags=["webhook deliveries"])


class DeliveryOut(BaseModel):
    id: int
    channel_type: str
    inbox_id: int | None
    status: str
    error: str | None
    attempts: int
    received_at: datetime
    processed_at: datetime | None
    body: str = Field(description="The raw body as received (UTF-8, invalid bytes replaced)")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] | None = Field(default=None, max_length=10_000, description="None: all")


class ReplayResult(BaseModel):
    replayed: int


@router.get("", response_model=Page[DeliveryOut])
async def list_(
    session: SessionDep,
    _admin: Admin,
    status: Literal["pending", "processed", "unprocessable"] | None = "unprocessable",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[DeliveryOut]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit + 1)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if cursor:
        query = query.where(WebhookDelivery.id < decode_id_cursor(cursor))
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        DeliveryOut(
            id=d.id,
            channel_type=d.channel_type,
            inbox_id=d.inbox_id,
            status=d.status,
            error=d.error,
            attempts=d.attempts,
            received_at=d.received_at,
            processed_at=d.processed_at,
            body=d.body.decode("utf-8", errors="replace"),
        )
        for d in rows
    ]
    return Page(items=items, next_cursor=encode_cursor(rows[-1].id) if more else None)


@router.post("/replay", response_model=ReplayResult)
async def replay(session: SessionDep, admin: Admin, body: ReplayRequest) -> ReplayResult:
    count = await do_replay_deliveries(session, actor=admin.actor, ids=body.ids)
    return ReplayResult(replayed=count)
