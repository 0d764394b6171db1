"""Who is asking, and what they may see. The one place permissions are decided.

A request is authenticated by an API token (``Authorization: Bearer wdsk_...``) or by a web
session cookie. Both become a :class:`Principal`; every query for a list filters by
``Principal.inbox_filter`` and every object route by ``Principal.can_see_inbox``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from wadesk.accounts.models import ApiToken, InboxMember, SecurityPolicy, User, UserSession
from wadesk.accounts.permissions import allowed, scopes_for_role
from wadesk.audit.actions import Actor
from wadesk.config import Settings
from wadesk.crypto import keyed_hash
from wadesk.db import utcnow

TOKEN_PREFIX = "wdsk_"  # noqa: S105 (a public prefix, not a secret)
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    role: str
    scopes: frozenset[str]
    token_id: int | None
    inbox_ids: frozenset[int] | None  # None: every inbox (admins)
    ip: str | None = None
    session_id: int | None = None
    user_agent: str | None = None
    # A web session of a person the MFA policy covers who has not enrolled yet.
    mfa_enrollment_required: bool = False

    @property
    def actor(self) -> Actor:
        if self.token_id is not None:
            return Actor(
                type="token",
                id=str(self.token_id),
                ip=self.ip,
                user_id=self.user_id,
                user_agent=self.user_agent,
            )
        return Actor(
            type="user",
            id=str(self.user_id),
            ip=self.ip,
            user_id=self.user_id,
            user_agent=self.user_agent,
        )

    def can(self, permission: str) -> bool:
        return allowed(self.role, self.scopes, permission)

    def can_see_inbox(self, inbox_id: int) -> bool:
        return self.inbox_ids is None or inbox_id in self.inbox_ids

    def inbox_filter(
        self, column: ColumnElement[int] | InstrumentedAttribute[int]
    ) -> ColumnElement[bool]:
        """A WHERE clause limiting a query to the inboxes this principal may see."""
        if self.inbox_ids is None:
            return true()
        return column.in_(sorted(self.inbox_ids))


@dataclass(frozen=True, slots=True)
class SessionAuth:
    """A web request's principal with the rows the pages show."""

    principal: Principal
    user: User
    web_session: UserSession
    csrf_token: str


def hash_token(token: str) -> str:
    return keyed_hash(token, "api-token")


def hash_session_token(token: str) -> str:
    return keyed_hash(token, "web-session")


def csrf_token_for(session_token: str) -> str:
    """The session's synchronizer token: derived from the cookie's secret, so it changes with
    every new session and cannot be computed by a page that cannot read the cookie."""
    return keyed_hash(session_token, "csrf")[:43]


def csrf_ok(session_token: str, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(csrf_token_for(session_token), submitted or "")


def session_cookie_name(settings: Settings) -> str:
    # __Host-: the browser accepts it only with Secure, Path=/ and no Domain.
    return "__Host-wadesk_session" if settings.https else "wadesk_session"


async def mfa_policy(session: AsyncSession, settings: Settings) -> str:
    stored = await session.scalar(select(SecurityPolicy.mfa_policy).where(SecurityPolicy.id == 1))
    return stored or settings.mfa_policy


def mfa_required(policy: str, role: str) -> bool:
    return policy == "everyone" or (policy == "admins" and role == "admin")


async def principal_for_user(
    session: AsyncSession,
    user: User,
    *,
    scopes: frozenset[str],
    token_id: int | None,
    ip: str | None,
    session_id: int | None = None,
    user_agent: str | None = None,
    mfa_enrollment_required: bool = False,
) -> Principal:
    inbox_ids: frozenset[int] | None = None
    if user.role != "admin":
        rows = await session.scalars(
            select(InboxMember.inbox_id).where(InboxMember.user_id == user.id)
        )
        inbox_ids = frozenset(rows.all())
    return Principal(
        user.id,
        user.role,
        scopes & scopes_for_role(user.role),
        token_id,
        inbox_ids,
        ip,
        session_id,
        user_agent,
        mfa_enrollment_required,
    )


async def authenticate_bearer(
    session: AsyncSession, token: str, *, ip: str | None, user_agent: str | None = None
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
    if (
        api_token.last_used_at is None
        or now - api_token.last_used_at > TOUCH_EVERY
        or api_token.last_used_ip != ip
    ):
        api_token.last_used_at, api_token.last_used_ip = now, ip
    scopes = frozenset(s for s in api_token.scopes.split(",") if s)
    return await principal_for_user(
        session, user, scopes=scopes, token_id=api_token.id, ip=ip, user_agent=user_agent
    )


def session_is_live(web_session: UserSession, settings: Settings) -> bool:
    now = utcnow()
    if web_session.revoked_at is not None or web_session.expires_at <= now:
        return False
    return now - web_session.last_seen_at <= timedelta(minutes=settings.session_idle_minutes)


async def load_session(
    session: AsyncSession, token: str, *, settings: Settings, state: str = "active"
) -> tuple[UserSession, User] | None:
    """The live session of a cookie and its (active) user, without touching anything."""
    if not token or len(token) > 200:
        return None
    row = (
        await session.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == hash_session_token(token))
        )
    ).first()
    if row is None:
        return None
    web_session, user = row
    if web_session.state != state or not user.is_active:
        return None
    if not session_is_live(web_session, settings):
        return None
    return web_session, user


async def authenticate_session(
    session: AsyncSession,
    token: str,
    *,
    settings: Settings,
    ip: str | None,
    user_agent: str | None,
) -> SessionAuth | None:
    loaded = await load_session(session, token, settings=settings)
    if loaded is None:
        return None
    web_session, user = loaded
    now = utcnow()
    if now - web_session.last_seen_at > TOUCH_EVERY or web_session.ip != ip:
        web_session.last_seen_at, web_session.ip = now, ip
        if user_agent:
            web_session.user_agent = user_agent[:300]
    policy = await mfa_policy(session, settings)
    principal = await principal_for_user(
        session,
        user,
        scopes=scopes_for_role(user.role),
        token_id=None,
        ip=ip,
        session_id=web_session.id,
        user_agent=user_agent[:300] if user_agent else None,
        mfa_enrollment_required=mfa_required(policy, user.role) and not user.has_mfa,
    )
    return SessionAuth(principal, user, web_session, csrf_token_for(token))
