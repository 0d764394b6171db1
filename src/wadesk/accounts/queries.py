"""Reads of people, sessions and tokens (no writes)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import session_is_live
from wadesk.accounts.models import ApiToken, InboxMember, RecoveryCode, User, UserSession
from wadesk.config import Settings
from wadesk.db import utcnow


async def live_sessions(
    session: AsyncSession, user_id: int, settings: Settings
) -> list[UserSession]:
    """Signed-in browsers of a person, most recently seen first."""
    rows = await session.scalars(
        select(UserSession)
        .where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.state == "active",
            UserSession.expires_at > utcnow(),
        )
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    return [s for s in rows.all() if session_is_live(s, settings)]


async def tokens_of(session: AsyncSession, user_id: int) -> list[ApiToken]:
    rows = await session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
    )
    return list(rows.all())


async def recovery_codes_left(session: AsyncSession, user_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


async def list_users(session: AsyncSession, *, include_inactive: bool = True) -> list[User]:
    query = select(User).order_by(User.is_active.desc(), User.name, User.id)
    if not include_inactive:
        query = query.where(User.is_active)
    return list((await session.scalars(query)).all())


async def inbox_ids_of(session: AsyncSession, user_ids: list[int]) -> dict[int, list[int]]:
    result: dict[int, list[int]] = {uid: [] for uid in user_ids}
    if user_ids:
        rows = await session.execute(
            select(InboxMember.user_id, InboxMember.inbox_id)
            .where(InboxMember.user_id.in_(user_ids))
            .order_by(InboxMember.inbox_id)
        )
        for user_id, inbox_id in rows.tuples():
            result[user_id].append(inbox_id)
    return result


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    user: User | None = await session.scalar(
        select(User).where(User.email == email.strip().lower())
    )
    return user
