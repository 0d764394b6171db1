"""State changes of people and their tokens."""

from __future__ import annotations

import secrets
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import TOKEN_PREFIX, hash_token
from wadesk.accounts.models import ROLES, ApiToken, InboxMember, User
from wadesk.audit.actions import Actor, record

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
SCOPES = ("read", "write", "admin")


class AccountError(ValueError):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def do_create_user(
    session: AsyncSession,
    *,
    actor: Actor,
    email: str,
    name: str,
    role: str,
    password: str | None,
) -> User:
    email = email.strip().lower()
    if "@" not in email:
        raise AccountError(f"{email!r} is not an email address")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"a user with email {email} already exists")
    user = User(
        email=email,
        name=name,
        role=role,
        password_hash=hash_password(password) if password else None,
        is_active=True,
    )
    session.add(user)
    await session.flush()
    await record(session, actor, "user.create", "user", user.id, {"email": email, "role": role})
    return user


async def do_create_token(
    session: AsyncSession,
    *,
    actor: Actor,
    user: User,
    name: str,
    scopes: tuple[str, ...] = ("read", "write"),
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; the clear token is returned once and never stored."""
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise AccountError(f"unknown scopes: {', '.join(sorted(unknown))}")
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(clear),
        prefix=clear[:12],
        scopes=",".join(scopes),
        expires_at=expires_at,
    )
    session.add(token)
    await session.flush()
    await record(
        session,
        actor,
        "token.create",
        "api_token",
        token.id,
        {"user_id": user.id, "scopes": list(scopes)},
    )
    return token, clear


async def do_add_inbox_member(
    session: AsyncSession, *, actor: Actor, inbox_id: int, user: User
) -> None:
    exists = await session.get(InboxMember, (inbox_id, user.id))
    if exists is None:
        session.add(InboxMember(inbox_id=inbox_id, user_id=user.id))
        await record(session, actor, "inbox.member_add", "inbox", inbox_id, {"user_id": user.id})
