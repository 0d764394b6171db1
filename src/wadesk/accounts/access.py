"""Who is asking, and what they may see. The one place permissions are decided."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from wadesk.accounts.models import ApiToken, InboxMember, User
from wadesk.audit.actions import Actor
from wadesk.crypto import keyed_hash
from wadesk.db import utcnow

TOKEN_PREFIX = "wdsk_"  # noqa: S105 (a public prefix, not a secret)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    role: str
    scopes: frozenset[str]
    token_id: int | None
    inbox_ids: frozenset[int] | None  # None: every inbox (admins)
    ip: str | None = None

    @property
    def actor(self) -> Actor:
        if self.token_id is not None:
            return Actor(type="token", id=str(self.token_id), ip=self.ip, user_id=self.user_id)
        return Actor(type="user", id=str(self.user_id), ip=self.ip, user_id=self.user_id)

    def can_see_inbox(self, inbox_id: int) -> bool:
        return self.inbox_ids is None or inbox_id in self.inbox_ids

    def inbox_filter(
        self, column: ColumnElement[int] | InstrumentedAttribute[int]
    ) -> ColumnElement[bool]:
        """A WHERE clause limiting a query to the inboxes this principal may see."""
        if self.inbox_ids is None:
            return true()
        return column.in_(sorted(self.inbox_ids))


def hash_token(token: str) -> str:
    return keyed_hash(token, "api-token")


async def principal_for_user(
    session: AsyncSession,
    user: User,
    *,
    scopes: frozenset[str],
    token_id: int | None,
    ip: str | None,
) -> Principal:
    inbox_ids: frozenset[int] | None = None
    if user.role != "admin":
        rows = await session.scalars(
            select(InboxMember.inbox_id).where(InboxMember.user_id == user.id)
        )
        inbox_ids = frozenset(rows.all())
        scopes = scopes - {"admin"}
    return Principal(user.id, user.role, scopes, token_id, inbox_ids, ip)


async def authenticate_bearer(
    session: AsyncSession, token: str, *, ip: str | None
) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == hash_token(token))
        )
    ).first()
    if row is None:
        return None
    api_token, user = row
    now = utcnow()
    if api_token.revoked_at is not None or not user.is_active:
        return None
    if api_token.expires_at is not None and api_token.expires_at <= now:
        return None
    if api_token.last_used_at is None or (now - api_token.last_used_at).total_seconds() > 60:
        api_token.last_used_at = now
    scopes = frozenset(s for s in api_token.scopes.split(",") if s)
    return await principal_for_user(session, user, scopes=scopes, token_id=api_token.id, ip=ip)
