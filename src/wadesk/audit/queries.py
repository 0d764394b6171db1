"""Reads of the audit trail: filtered pages, CSV export, and the chain check."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.chain import GENESIS, Break, ChainChecker
from wadesk.audit.models import AuditEvent

CSV_COLUMNS = (
    "id",
    "created_at",
    "actor_type",
    "actor_id",
    "actor",
    "action",
    "target_type",
    "target_id",
    "ip",
    "user_agent",
    "details",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Who (a person, with their tokens, or an actor type), what (an action or its prefix
    ending in '.'), which target, which conversation, when."""

    user_id: int | None = None
    actor_type: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    conversation_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    # A supervisor's reach: only actions by these people (with their tokens); None: anyone.
    within_user_ids: frozenset[int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in (
                ("user_id", self.user_id),
                ("actor_type", self.actor_type),
                ("action", self.action),
                ("target_type", self.target_type),
                ("target_id", self.target_id),
                ("conversation_id", self.conversation_id),
                ("since", self.since),
                ("until", self.until),
            )
            if v is not None
        }


async def _conditions(session: AsyncSession, f: AuditFilter) -> list[ColumnElement[bool]]:
    from wadesk.accounts.models import ApiToken

    where: list[ColumnElement[bool]] = []
    if f.user_id is not None:
        token_ids = (
            await session.scalars(select(ApiToken.id).where(ApiToken.user_id == f.user_id))
        ).all()
        by_user = and_(AuditEvent.actor_type == "user", AuditEvent.actor_id == str(f.user_id))
        by_token = (
            and_(
                AuditEvent.actor_type == "token",
                AuditEvent.actor_id.in_([str(t) for t in token_ids]),
            )
            if token_ids
            else false()
        )
        where.append(or_(by_user, by_token))
    if f.within_user_ids is not None:
        people = sorted(f.within_user_ids)
        tokens = (
            (await session.scalars(select(ApiToken.id).where(ApiToken.user_id.in_(people)))).all()
            if people
            else []
        )
        where.append(
            or_(
                and_(
                    AuditEvent.actor_type == "user",
                    AuditEvent.actor_id.in_([str(u) for u in people]),
                ),
                and_(
                    AuditEvent.actor_type == "token",
                    AuditEvent.actor_id.in_([str(t) for t in tokens]),
                ),
            )
            if people
            else false()
        )
    if f.actor_type:
        where.append(AuditEvent.actor_type == f.actor_type)
    if f.action:
        if f.action.endswith("."):
            where.append(AuditEvent.action.startswith(f.action, autoescape=True))
        else:
            where.append(AuditEvent.action == f.action)
    if f.target_type:
        where.append(AuditEvent.target_type == f.target_type)
    if f.target_id:
        where.append(AuditEvent.target_id == f.target_id)
    if f.conversation_id is not None:
        where.append(
            or_(
                and_(
                    AuditEvent.target_type == "conversation",
                    AuditEvent.target_id == str(f.conversation_id),
                ),
                AuditEvent.details["conversation_id"].as_integer() == f.conversation_id,
            )
        )
    if f.since is not None:
        where.append(AuditEvent.created_at >= f.since)
    if f.until is not None:
        where.append(AuditEvent.created_at < f.until)
    return where


async def filtered(session: AsyncSession, f: AuditFilter) -> Select[tuple[AuditEvent]]:
    return select(AuditEvent).where(*await _conditions(session, f))


async def list_events(
    session: AsyncSession, f: AuditFilter, *, before_id: int | None, limit: int
) -> list[AuditEvent]:
    query = await filtered(session, f)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    rows = await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))
    return list(rows.all())


async def actor_names(session: AsyncSession, events: list[AuditEvent]) -> dict[str, str]:
    """'user:5' / 'token:3' -> the person's email, for display and export."""
    from wadesk.accounts.models import ApiToken, User

    user_ids = {int(e.actor_id) for e in events if e.actor_type == "user" and e.actor_id}
    token_ids = {int(e.actor_id) for e in events if e.actor_type == "token" and e.actor_id}
    names: dict[str, str] = {}
    if token_ids:
        rows = await session.execute(
            select(ApiToken.id, ApiToken.name, User.email)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.id.in_(token_ids))
        )
        for token_id, token_name, email in rows.tuples():
            names[f"token:{token_id}"] = f"{email} (token {token_name})"
    if user_ids:
        rows2 = await session.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
        for user_id, email in rows2.tuples():
            names[f"user:{user_id}"] = email
    return names


def _cell(value: Any) -> str:
    """CSV injection: a cell a spreadsheet would run as a formula is quoted as text."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


async def export_csv(
    session: AsyncSession, f: AuditFilter, *, batch: int = 1000
) -> AsyncIterator[str]:
    """The filtered events, oldest first, as CSV text chunks (one chunk per batch)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    base = await filtered(session, f)
    after = 0
    while True:
        rows = list(
            (
                await session.scalars(
                    base.where(AuditEvent.id > after).order_by(AuditEvent.id).limit(batch)
                )
            ).all()
        )
        if not rows:
            return
        names = await actor_names(session, rows)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for e in rows:
            writer.writerow(
                [
                    e.id,
                    e.created_at.isoformat(),
                    e.actor_type,
                    _cell(e.actor_id),
                    _cell(names.get(f"{e.actor_type}:{e.actor_id}", "")),
                    e.action,
                    _cell(e.target_type),
                    _cell(e.target_id),
                    _cell(e.ip),
                    _cell(e.user_agent),
                    _cell(orjson.dumps(e.details, option=orjson.OPT_SORT_KEYS).decode()),
                    e.prev_hash,
                    e.hash,
                ]
            )
        yield buffer.getvalue()
        after = rows[-1].id


_CHAIN_COLUMNS = (
    AuditEvent.id,
    AuditEvent.chain_seq,
    AuditEvent.created_at,
    AuditEvent.actor_type,
    AuditEvent.actor_id,
    AuditEvent.action,
    AuditEvent.target_type,
    AuditEvent.target_id,
    AuditEvent.ip,
    AuditEvent.user_agent,
    AuditEvent.details,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


@dataclass(frozen=True, slots=True)
class Verification:
    checked: int
    head: str
    broken: Break | None
    unchained: int = 0  # rows not linked yet (PostgreSQL: written in the last moments)

    @property
    def ok(self) -> bool:
        return self.broken is None


async def chain_tail(session: AsyncSession) -> tuple[int, str]:
    """The last linked row's place and hash, (0, GENESIS) before the first: where the next
    rows link (the SQLite writer and the PostgreSQL chainer both extend it)."""
    tail = (
        await session.execute(
            select(AuditEvent.chain_seq, AuditEvent.hash)
            .where(AuditEvent.chain_seq.is_not(None))
            .order_by(AuditEvent.chain_seq.desc())
            .limit(1)
        )
    ).first()
    if tail is None:
        return 0, GENESIS
    return int(tail[0]), tail[1] or GENESIS


async def verify_chain(
    session: AsyncSession, secret_key: str, *, batch: int = 2000
) -> Verification:
    """Walk the whole chain in chain order; stop at the first row that does not hold. Call
    ``audit.chainer.chain_pending`` first to include the rows written a moment ago."""
    checker = ChainChecker(secret_key)
    after = 0
    while checker.broken is None:
        rows = (
            await session.execute(
                select(*_CHAIN_COLUMNS)
                .where(AuditEvent.chain_seq > after)
                .order_by(AuditEvent.chain_seq)
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        for row in rows:
            if not checker.feed(row):
                break
        after = rows[-1].chain_seq
    unchained = await session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.hash.is_(None))
    )
    return Verification(checker.checked, checker.previous, checker.broken, unchained or 0)
