"""State changes of people: accounts, sign-in, sessions, MFA, tokens, inbox membership.

Every function takes the session first and keyword arguments after, checks, writes, and
records an audit event in the same transaction. Nothing here commits.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import case, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts import totp
from wadesk.accounts.access import (
    TOKEN_PREFIX,
    hash_session_token,
    hash_token,
    load_session,
    mfa_policy,
    mfa_required,
)
from wadesk.accounts.models import (
    MFA_POLICIES,
    ROLES,
    ApiToken,
    InboxMember,
    LoginThrottle,
    RecoveryCode,
    SecurityPolicy,
    User,
    UserSession,
)
from wadesk.accounts.passwords import (
    WeakPassword,
    check_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from wadesk.audit.actions import Actor, record
from wadesk.config import Settings, get_settings
from wadesk.crypto import keyed_hash
from wadesk.db import UTCDateTime, insert_for, utcnow

__all__ = ["SCOPES", "AccountError", "WeakPassword", "hash_password"]

SCOPES = ("read", "write", "admin")
MFA_PENDING_MINUTES = 10
GENERIC_SIGN_IN_ERROR = "Incorrect email or password."


class AccountError(ValueError):
    """Refused; the message is for the person who asked."""


# --------------------------------------------------------------------------- people


def _normal_email(email: str) -> str:
    return email.strip().lower()


async def _active_admins(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count()).select_from(User).where(User.role == "admin", User.is_active)
    )
    return int(count or 0)


async def do_create_user(
    session: AsyncSession,
    *,
    actor: Actor,
    email: str,
    name: str,
    role: str,
    password: str | None,
) -> User:
    email = _normal_email(email)
    name = name.strip()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise AccountError(f"{email!r} is not an email address")
    if not name or len(name) > 200:
        raise AccountError("a name of 1 to 200 characters is needed")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if password is not None:
        try:
            check_password(
                password, min_length=get_settings().password_min_length, email=email, name=name
            )
        except WeakPassword as exc:
            raise AccountError(f"password: {exc}") from exc
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"a user with email {email} already exists")
    now = utcnow()
    user = User(
        email=email,
        name=name,
        role=role,
        password_hash=hash_password(password) if password else None,
        password_changed_at=now if password else None,
        is_active=True,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    await record(session, actor, "user.create", "user", user.id, {"email": email, "role": role})
    return user


async def do_update_user(
    session: AsyncSession,
    *,
    actor: Actor,
    user: User,
    name: str | None = None,
    role: str | None = None,
) -> User:
    changes: dict[str, dict[str, str]] = {}
    if name is not None and name.strip() != user.name:
        if not name.strip() or len(name.strip()) > 200:
            raise AccountError("a name of 1 to 200 characters is needed")
        changes["name"] = {"before": user.name, "after": name.strip()}
        user.name = name.strip()
    if role is not None and role != user.role:
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        if user.role == "admin" and user.is_active and await _active_admins(session) <= 1:
            raise AccountError("this is the last active admin: make someone else admin first")
        changes["role"] = {"before": user.role, "after": role}
        user.role = role
    if changes:
        await record(
            session,
            actor,
            "user.role_change" if "role" in changes else "user.update",
            "user",
            user.id,
            changes,
        )
    return user


async def do_deactivate_user(session: AsyncSession, *, actor: Actor, user: User) -> dict[str, int]:
    """Switch a person off at once: sessions and tokens end, their open conversations go back
    to the queue (unassigned)."""
    from wadesk.conversations.actions import do_update_conversation
    from wadesk.conversations.models import Conversation

    if not user.is_active:
        raise AccountError("this user is already deactivated")
    if actor.user_id == user.id:
        raise AccountError("you cannot deactivate yourself")
    if user.role == "admin" and await _active_admins(session) <= 1:
        raise AccountError("this is the last active admin: make someone else admin first")
    now = utcnow()
    user.is_active = False
    user.deactivated_at = now
    sessions = await _revoke_sessions(session, user_id=user.id, reason="deactivated")
    tokens = await _revoke_tokens(session, user_id=user.id)
    # Row locks first, the audit chain's lock (taken by each record) after: never the reverse
    # order, which could deadlock with an agent updating one of these conversations.
    query = (
        select(Conversation)
        .where(Conversation.assignee_id == user.id, Conversation.status != "resolved")
        .order_by(Conversation.id)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    conversations = (await session.scalars(query)).all()
    for conversation in conversations:
        await do_update_conversation(
            session, actor=actor, conversation=conversation, assignee_id=None
        )
    summary = {"sessions": sessions, "tokens": tokens, "conversations": len(conversations)}
    await record(session, actor, "user.deactivate", "user", user.id, summary)
    return summary


async def do_reactivate_user(session: AsyncSession, *, actor: Actor, user: User) -> None:
    if user.is_active:
        raise AccountError("this user is already active")
    user.is_active = True
    user.deactivated_at = None
    await record(session, actor, "user.reactivate", "user", user.id)


async def do_set_password(
    session: AsyncSession, *, actor: Actor, user: User, password: str
) -> None:
    """Set a person's password for them (an admin or the CLI); their sessions end."""
    try:
        check_password(
            password,
            min_length=get_settings().password_min_length,
            email=user.email,
            name=user.name,
        )
    except WeakPassword as exc:
        raise AccountError(str(exc)) from exc
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    ended = await _revoke_sessions(session, user_id=user.id, reason="password_reset")
    await record(session, actor, "user.password_reset", "user", user.id, {"sessions_ended": ended})


async def do_change_password(
    session: AsyncSession,
    *,
    actor: Actor,
    user: User,
    current_session_id: int,
    current_password: str,
    new_password: str,
    settings: Settings,
) -> None:
    """A person changes their own password; it re-authenticates them, so it is throttled."""
    wait = await _locked_for(session, [_account_key(user.email)])
    if wait:
        raise AccountError(f"Too many attempts. Try again in {_human(wait)}.")
    if not verify_password(user.password_hash, current_password):
        await _register_failure(session, _account_key(user.email), settings, per="account")
        await record(session, actor, "auth.reauth_failed", "user", user.id)
        raise AccountError("Your current password is not right.")
    try:
        check_password(
            new_password, min_length=settings.password_min_length, email=user.email, name=user.name
        )
    except WeakPassword as exc:
        raise AccountError(str(exc)) from exc
    if verify_password(user.password_hash, new_password):
        raise AccountError("The new password is the same as the current one.")
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    ended = await _revoke_sessions(
        session, user_id=user.id, reason="password_changed", keep=current_session_id
    )
    await record(
        session, actor, "user.password_change", "user", user.id, {"other_sessions_ended": ended}
    )


# --------------------------------------------------------------------------- inbox members


async def do_add_inbox_member(
    session: AsyncSession, *, actor: Actor, inbox_id: int, user: User
) -> bool:
    from wadesk.inboxes.models import Inbox

    if await session.get(Inbox, inbox_id) is None:
        raise AccountError(f"no inbox with id {inbox_id}")
    exists = await session.get(InboxMember, (inbox_id, user.id))
    if exists is not None:
        return False
    session.add(InboxMember(inbox_id=inbox_id, user_id=user.id))
    await record(session, actor, "inbox.member_add", "inbox", inbox_id, {"user_id": user.id})
    return True


async def do_remove_inbox_member(
    session: AsyncSession, *, actor: Actor, inbox_id: int, user: User
) -> bool:
    member = await session.get(InboxMember, (inbox_id, user.id))
    if member is None:
        return False
    await session.delete(member)
    await record(session, actor, "inbox.member_remove", "inbox", inbox_id, {"user_id": user.id})
    return True


# --------------------------------------------------------------------------- API tokens


async def do_create_token(
    session: AsyncSession,
    *,
    actor: Actor,
    user: User,
    name: str,
    scopes: tuple[str, ...] = ("read", "write"),
    expires_at: datetime | None = None,
    limit_to: Iterable[str] | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; the clear token is returned once and never stored.

    ``limit_to``: the scopes the creator may hand out (a token never mints a broader one).
    """
    scopes = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise AccountError(f"unknown scopes: {', '.join(sorted(unknown))}")
    if not scopes:
        raise AccountError("choose at least one scope")
    if limit_to is not None and not set(scopes) <= set(limit_to):
        extra = sorted(set(scopes) - set(limit_to))
        raise AccountError(f"you cannot grant the scope(s): {', '.join(extra)}")
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("a token name of 1 to 100 characters is needed")
    if expires_at is not None and expires_at <= utcnow():
        raise AccountError("the expiry must be in the future")
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(clear),
        prefix=clear[:12],
        scopes=",".join(scopes),
        expires_at=expires_at,
        created_at=utcnow(),
    )
    session.add(token)
    await session.flush()
    await record(
        session,
        actor,
        "token.create",
        "api_token",
        token.id,
        {
            "user_id": user.id,
            "name": name,
            "scopes": list(scopes),
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, clear


async def do_revoke_token(session: AsyncSession, *, actor: Actor, token: ApiToken) -> bool:
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    await record(session, actor, "token.revoke", "api_token", token.id, {"user_id": token.user_id})
    return True


async def _revoke_tokens(session: AsyncSession, *, user_id: int) -> int:
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --------------------------------------------------------------------------- throttling


def _account_key(email: str) -> str:
    return "acct:" + keyed_hash(_normal_email(email), "sign-in-throttle")[:40]


def _ip_key(ip: str | None) -> str:
    return f"ip:{ip or 'unknown'}"[:100]


def _human(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{(seconds + 59) // 60} minutes"


async def _locked_for(session: AsyncSession, keys: list[str]) -> int:
    """Seconds until every key is unlocked (0: none is locked)."""
    now = utcnow()
    rows = await session.scalars(
        select(LoginThrottle.locked_until).where(
            LoginThrottle.key.in_(keys), LoginThrottle.locked_until > now
        )
    )
    waits = [int((until - now).total_seconds()) + 1 for until in rows.all() if until]
    return max(waits, default=0)


async def _register_failure(
    session: AsyncSession, key: str, settings: Settings, *, per: Literal["account", "ip"]
) -> int:
    """Count a failure atomically (every process shares the row); lock the key once it
    reaches its threshold, for a time that doubles with each further failure. Returns the
    lock in seconds (0: not locked)."""
    now = utcnow()
    stale = now - timedelta(minutes=settings.login_failure_window_minutes)
    at = literal(now, UTCDateTime())
    insert = insert_for(session.bind.dialect.name)(LoginThrottle).values(
        key=key, failures=1, first_failure_at=now, last_failure_at=now, locked_until=None
    )
    is_stale = LoginThrottle.last_failure_at < literal(stale, UTCDateTime())
    statement = insert.on_conflict_do_update(
        index_elements=[LoginThrottle.key],
        set_={
            "failures": case((is_stale, 1), else_=LoginThrottle.failures + 1),
            "first_failure_at": case((is_stale, at), else_=LoginThrottle.first_failure_at),
            "last_failure_at": at,
        },
    ).returning(LoginThrottle.failures)
    failures = int((await session.execute(statement)).scalar_one())
    threshold = (
        settings.login_max_failures_per_account
        if per == "account"
        else settings.login_max_failures_per_ip
    )
    if failures < threshold:
        return 0
    lock: int = min(
        settings.login_lock_max_seconds,
        settings.login_lock_base_seconds * 2 ** min(failures - threshold, 20),
    )
    await session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(locked_until=now + timedelta(seconds=lock))
        .execution_options(synchronize_session=False)
    )
    return lock


async def _clear_throttle(session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


# --------------------------------------------------------------------------- signing in


@dataclass(frozen=True, slots=True)
class SignIn:
    """What a sign-in step came to. ``token`` is the new session cookie's value."""

    status: Literal["signed_in", "mfa_required", "invalid", "locked", "expired"]
    token: str | None = None
    retry_after: int = 0
    message: str = ""


async def _new_session(
    session: AsyncSession,
    *,
    user: User,
    state: str,
    ip: str | None,
    user_agent: str | None,
    settings: Settings,
    mfa_method: str | None = None,
) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = (
        timedelta(minutes=MFA_PENDING_MINUTES)
        if state == "mfa"
        else timedelta(hours=settings.session_max_hours)
    )
    session.add(
        UserSession(
            user_id=user.id,
            token_hash=hash_session_token(token),
            state=state,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            reauth_at=now if state == "active" else None,
            mfa_method=mfa_method,
            ip=ip,
            user_agent=user_agent[:300] if user_agent else None,
        )
    )
    await session.flush()
    return token


def _attempt_actor(user: User | None, ip: str | None, user_agent: str | None) -> Actor:
    if user is None:
        return Actor(type="anonymous", ip=ip, user_agent=user_agent and user_agent[:300])
    return Actor(
        type="user",
        id=str(user.id),
        user_id=user.id,
        ip=ip,
        user_agent=user_agent and user_agent[:300],
    )


async def do_sign_in(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    ip: str | None,
    user_agent: str | None,
    settings: Settings,
) -> SignIn:
    """The password step. The answer never tells whether the account exists: unknown
    accounts are throttled, hashed against and audited like known ones."""
    email = _normal_email(email)[:320]
    keys = [_account_key(email), _ip_key(ip)]
    wait = await _locked_for(session, keys)
    if wait:
        return SignIn(
            "locked",
            retry_after=wait,
            message=f"Too many attempts. Try again in {_human(wait)}.",
        )
    user = await session.scalar(select(User).where(User.email == email))
    password_ok = verify_password(user.password_hash if user else None, password[:1024])
    if user is None or not user.is_active or not password_ok:
        lock = max(
            await _register_failure(session, keys[0], settings, per="account"),
            await _register_failure(session, keys[1], settings, per="ip"),
        )
        reason = (
            "unknown_account"
            if user is None
            else ("deactivated" if not user.is_active else "bad_password")
        )
        await record(
            session,
            _attempt_actor(user, ip, user_agent),
            "auth.sign_in_failed",
            "user",
            user.id if user else None,
            {
                "email": email if "@" in email else "(not an email address)",
                "reason": reason,
                **({"locked_seconds": lock} if lock else {}),
            },
        )
        if lock:
            return SignIn(
                "locked",
                retry_after=lock,
                message=f"Too many attempts. Try again in {_human(lock)}.",
            )
        return SignIn("invalid", message=GENERIC_SIGN_IN_ERROR)
    assert user.password_hash is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    await _clear_throttle(session, keys[0])
    if user.has_mfa:
        token = await _new_session(
            session, user=user, state="mfa", ip=ip, user_agent=user_agent, settings=settings
        )
        return SignIn("mfa_required", token=token)
    token = await _new_session(
        session, user=user, state="active", ip=ip, user_agent=user_agent, settings=settings
    )
    user.last_sign_in_at = utcnow()
    await record(
        session,
        _attempt_actor(user, ip, user_agent),
        "auth.sign_in",
        "user",
        user.id,
        {"mfa": None},
    )
    return SignIn("signed_in", token=token)


async def do_sign_in_second_factor(
    session: AsyncSession,
    *,
    pending_token: str,
    code: str,
    ip: str | None,
    user_agent: str | None,
    settings: Settings,
) -> SignIn:
    """The second step: a TOTP code or a recovery code. Success replaces the pending session
    with a new one (a new cookie)."""
    loaded = await load_session(session, pending_token, settings=settings, state="mfa")
    if loaded is None:
        return SignIn("expired", message="Your sign-in took too long. Start again.")
    pending, user = loaded
    if user.mfa_secret is None:
        return SignIn("expired", message="Start again.")
    keys = [f"mfa:{user.id}", _ip_key(ip)]
    wait = await _locked_for(session, keys)
    if wait:
        return SignIn(
            "locked", retry_after=wait, message=f"Too many attempts. Try again in {_human(wait)}."
        )
    actor = _attempt_actor(user, ip, user_agent)
    method: str | None = None
    now = utcnow()
    step = totp.matching_step(user.mfa_secret, code, after_step=user.mfa_last_step)
    if step is not None:
        claimed = await session.execute(
            update(User)
            .where(
                User.id == user.id,
                or_(User.mfa_last_step.is_(None), User.mfa_last_step < step),
            )
            .values(mfa_last_step=step)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) == 1:
            user.mfa_last_step = step
            method = "totp"
    elif totp.looks_like_recovery_code(code):
        code_id = await session.scalar(
            select(RecoveryCode.id).where(
                RecoveryCode.user_id == user.id,
                RecoveryCode.code_hash == totp.hash_recovery_code(code),
                RecoveryCode.used_at.is_(None),
            )
        )
        if code_id is not None:
            used = await session.execute(
                update(RecoveryCode)
                .where(RecoveryCode.id == code_id, RecoveryCode.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(used, "rowcount", 0) == 1:
                method = "recovery_code"
    if method is None:
        lock = max(
            await _register_failure(session, keys[0], settings, per="account"),
            await _register_failure(session, keys[1], settings, per="ip"),
        )
        await record(
            session,
            actor,
            "auth.mfa_failed",
            "user",
            user.id,
            {"locked_seconds": lock} if lock else {},
        )
        if lock:
            return SignIn(
                "locked",
                retry_after=lock,
                message=f"Too many attempts. Try again in {_human(lock)}.",
            )
        return SignIn("invalid", message="That code is not right, or it was already used.")
    await _clear_throttle(session, keys[0])
    pending.revoked_at, pending.revoked_reason = now, "completed"
    token = await _new_session(
        session,
        user=user,
        state="active",
        ip=ip,
        user_agent=user_agent,
        settings=settings,
        mfa_method=method,
    )
    user.last_sign_in_at = now
    details: dict[str, object] = {"mfa": method}
    if method == "recovery_code":
        details["recovery_codes_left"] = await _recovery_codes_left(session, user.id)
    await record(session, actor, "auth.sign_in", "user", user.id, details)
    return SignIn("signed_in", token=token)


async def do_reauthenticate(
    session: AsyncSession,
    *,
    actor: Actor,
    user: User,
    web_session: UserSession,
    password: str,
    settings: Settings,
) -> None:
    """Confirm the password again before a sensitive change (MFA, password, tokens)."""
    key = _account_key(user.email)
    wait = await _locked_for(session, [key])
    if wait:
        raise AccountError(f"Too many attempts. Try again in {_human(wait)}.")
    if not verify_password(user.password_hash, password[:1024]):
        await _register_failure(session, key, settings, per="account")
        await record(session, actor, "auth.reauth_failed", "user", user.id)
        raise AccountError("That password is not right.")
    web_session.reauth_at = utcnow()
    await record(session, actor, "auth.reauth", "user", user.id)


def recently_authenticated(web_session: UserSession, settings: Settings) -> bool:
    return web_session.reauth_at is not None and utcnow() - web_session.reauth_at <= timedelta(
        minutes=settings.reauth_minutes
    )


# --------------------------------------------------------------------------- sessions


async def _revoke_sessions(
    session: AsyncSession, *, user_id: int, reason: str, keep: int | None = None
) -> int:
    query = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(UserSession.id != keep)
    result = await session.execute(
        query.values(revoked_at=utcnow(), revoked_reason=reason).execution_options(
            synchronize_session=False
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def do_sign_out(session: AsyncSession, *, actor: Actor, web_session: UserSession) -> None:
    if web_session.revoked_at is None:
        web_session.revoked_at, web_session.revoked_reason = utcnow(), "signed_out"
        await record(session, actor, "auth.sign_out", "user_session", web_session.id)


async def do_revoke_session(
    session: AsyncSession, *, actor: Actor, web_session: UserSession
) -> bool:
    if web_session.revoked_at is not None:
        return False
    by_owner = actor.user_id == web_session.user_id
    web_session.revoked_at = utcnow()
    web_session.revoked_reason = "signed_out_remotely" if by_owner else "ended_by_admin"
    await record(
        session,
        actor,
        "session.revoke",
        "user_session",
        web_session.id,
        {"user_id": web_session.user_id},
    )
    return True


async def do_revoke_all_sessions(
    session: AsyncSession, *, actor: Actor, user: User, keep_session_id: int | None = None
) -> int:
    by_owner = actor.user_id == user.id
    ended = await _revoke_sessions(
        session,
        user_id=user.id,
        reason="signed_out_remotely" if by_owner else "ended_by_admin",
        keep=keep_session_id,
    )
    await record(
        session,
        actor,
        "session.revoke_all",
        "user",
        user.id,
        {"sessions_ended": ended, "kept_current": keep_session_id is not None},
    )
    return ended


# --------------------------------------------------------------------------- MFA


async def do_begin_mfa_enrolment(session: AsyncSession, *, user: User) -> str:
    """A new TOTP seed to enrol (kept encrypted until confirmed); the same one until then."""
    if user.mfa_pending_secret is None:
        user.mfa_pending_secret = totp.new_secret()
        await session.flush()
    return user.mfa_pending_secret


async def _new_recovery_codes(session: AsyncSession, user_id: int) -> list[str]:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = totp.new_recovery_codes()
    now = utcnow()
    for code in codes:
        session.add(
            RecoveryCode(user_id=user_id, code_hash=totp.hash_recovery_code(code), created_at=now)
        )
    await session.flush()
    return codes


async def _recovery_codes_left(session: AsyncSession, user_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


async def do_confirm_mfa(
    session: AsyncSession,
    *,
    actor: Actor,
    user: User,
    code: str,
    current_session: UserSession,
) -> list[str]:
    """Turn MFA on with the first code from the app. Returns the recovery codes (shown once).
    Other sessions, signed in without the second factor, end."""
    if user.mfa_pending_secret is None:
        raise AccountError("Start the set-up again.")
    step = totp.matching_step(user.mfa_pending_secret, code, after_step=None)
    if step is None:
        raise AccountError(
            "That code is not right. Check the time on your phone and type the current code."
        )
    replacing = user.mfa_secret is not None
    user.mfa_secret = user.mfa_pending_secret
    user.mfa_pending_secret = None
    user.mfa_enabled_at = utcnow()
    user.mfa_last_step = step
    codes = await _new_recovery_codes(session, user.id)
    current_session.mfa_method = "totp"
    ended = await _revoke_sessions(
        session, user_id=user.id, reason="mfa_enabled", keep=current_session.id
    )
    await record(
        session,
        actor,
        "mfa.replace" if replacing else "mfa.enable",
        "user",
        user.id,
        {"method": "totp", "other_sessions_ended": ended},
    )
    return codes


async def do_regenerate_recovery_codes(
    session: AsyncSession, *, actor: Actor, user: User
) -> list[str]:
    if not user.has_mfa:
        raise AccountError("Turn on two-step verification first.")
    codes = await _new_recovery_codes(session, user.id)
    await record(session, actor, "mfa.recovery_codes_regenerate", "user", user.id)
    return codes


def _clear_mfa(user: User) -> None:
    user.mfa_secret = None
    user.mfa_pending_secret = None
    user.mfa_enabled_at = None
    user.mfa_last_step = None


async def do_disable_mfa(
    session: AsyncSession, *, actor: Actor, user: User, settings: Settings
) -> None:
    if not user.has_mfa:
        raise AccountError("Two-step verification is not on.")
    if mfa_required(await mfa_policy(session, settings), user.role):
        raise AccountError("Your organisation requires two-step verification for your role.")
    _clear_mfa(user)
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    await record(session, actor, "mfa.disable", "user", user.id)


async def do_reset_mfa(session: AsyncSession, *, actor: Actor, user: User) -> int:
    """An admin resets a person's MFA (lost phone): the seed and recovery codes are removed
    and their sessions end; under a policy, they enrol again at their next sign-in."""
    if actor.user_id == user.id:
        raise AccountError("Change your own two-step verification on your account page.")
    had = user.has_mfa
    _clear_mfa(user)
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    ended = await _revoke_sessions(session, user_id=user.id, reason="mfa_reset")
    await record(
        session, actor, "mfa.reset", "user", user.id, {"had_mfa": had, "sessions_ended": ended}
    )
    return ended


async def do_set_mfa_policy(session: AsyncSession, *, actor: Actor, policy: str) -> str:
    if policy not in MFA_POLICIES:
        raise AccountError(f"policy must be one of {', '.join(MFA_POLICIES)}")
    row = await session.get(SecurityPolicy, 1)
    before = row.mfa_policy if row else None
    if row is None:
        row = SecurityPolicy(id=1, mfa_policy=policy)
        session.add(row)
    if before == policy:
        return policy
    row.mfa_policy = policy
    row.updated_at = utcnow()
    row.updated_by = actor.user_id
    await session.flush()
    await record(
        session,
        actor,
        "security.mfa_policy",
        "security_policy",
        1,
        {"before": before, "after": policy},
    )
    return policy
