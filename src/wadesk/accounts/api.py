"""/api/v1/me, /users, /tokens, /security/policy: people, their sessions and tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal, mfa_policy
from wadesk.accounts.actions import (
    AccountError,
    do_add_inbox_member,
    do_create_token,
    do_create_user,
    do_deactivate_user,
    do_reactivate_user,
    do_remove_inbox_member,
    do_reset_mfa,
    do_revoke_all_sessions,
    do_revoke_session,
    do_revoke_token,
    do_set_mfa_policy,
    do_update_user,
)
from wadesk.accounts.devices import describe_device
from wadesk.accounts.models import ApiToken, User, UserSession
from wadesk.accounts.queries import inbox_ids_of, list_users, live_sessions, tokens_of
from wadesk.accounts.schemas import (
    Ended,
    PolicyOut,
    PolicyUpdate,
    SessionOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from wadesk.deps import RuntimeDep, SessionDep, require_permission
from wadesk.errors import ApiError
from wadesk.pagination import Page

router = APIRouter(tags=["people"])

Self = Annotated[Principal, require_permission("account.self")]
OwnSessions = Annotated[Principal, require_permission("sessions.own")]
OwnTokens = Annotated[Principal, require_permission("tokens.own")]
UsersReader = Annotated[Principal, require_permission("users.read")]
UsersManager = Annotated[Principal, require_permission("users.manage")]
UsersSecurity = Annotated[Principal, require_permission("users.security")]
PolicyAdmin = Annotated[Principal, require_permission("security.policy")]


def _refused(exc: AccountError) -> ApiError:
    return ApiError(422, "refused", str(exc))


async def _users_out(session: AsyncSession, users: list[User]) -> list[UserOut]:
    inboxes = await inbox_ids_of(session, [u.id for u in users])
    return [
        UserOut(
            id=u.id,
            email=u.email,
            name=u.name,
            role=u.role,
            is_active=u.is_active,
            mfa_enabled=u.has_mfa,
            inbox_ids=inboxes[u.id],
            created_at=u.created_at,
            last_sign_in_at=u.last_sign_in_at,
            deactivated_at=u.deactivated_at,
        )
        for u in users
    ]


def _session_out(s: UserSession, principal: Principal) -> SessionOut:
    return SessionOut(
        id=s.id,
        device=describe_device(s.user_agent),
        ip=s.ip,
        user_agent=s.user_agent,
        created_at=s.created_at,
        last_seen_at=s.last_seen_at,
        expires_at=s.expires_at,
        mfa_method=s.mfa_method,
        current=s.id == principal.session_id,
    )


def _token_out(t: ApiToken) -> TokenOut:
    return TokenOut(
        id=t.id,
        user_id=t.user_id,
        name=t.name,
        prefix=t.prefix,
        scopes=[s for s in t.scopes.split(",") if s],
        created_at=t.created_at,
        expires_at=t.expires_at,
        last_used_at=t.last_used_at,
        last_used_ip=t.last_used_ip,
        revoked_at=t.revoked_at,
    )


async def _user_or_404(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise ApiError(404, "not_found", "No such user.")
    return user


# ------------------------------------------------------------------ me


@router.get("/me", response_model=UserOut)
async def me(session: SessionDep, principal: Self) -> UserOut:
    return (await _users_out(session, [await _user_or_404(session, principal.user_id)]))[0]


@router.get("/me/sessions", response_model=Page[SessionOut])
async def my_sessions(
    session: SessionDep, runtime: RuntimeDep, principal: OwnSessions
) -> Page[SessionOut]:
    rows = await live_sessions(session, principal.user_id, runtime.settings)
    return Page(items=[_session_out(s, principal) for s in rows])


@router.delete("/me/sessions/{session_id}", status_code=204)
async def end_my_session(session: SessionDep, principal: OwnSessions, session_id: int) -> Response:
    target = await session.get(UserSession, session_id)
    if target is None or target.user_id != principal.user_id:
        raise ApiError(404, "not_found", "No such session.")
    await do_revoke_session(session, actor=principal.actor, web_session=target)
    return Response(status_code=204)


@router.delete("/me/sessions", response_model=Ended)
async def end_my_other_sessions(session: SessionDep, principal: OwnSessions) -> Ended:
    user = await _user_or_404(session, principal.user_id)
    ended = await do_revoke_all_sessions(
        session, actor=principal.actor, user=user, keep_session_id=principal.session_id
    )
    return Ended(ended=ended)


# ------------------------------------------------------------------ tokens


@router.get("/tokens", response_model=Page[TokenOut])
async def list_tokens(
    session: SessionDep, principal: OwnTokens, user_id: int | None = None
) -> Page[TokenOut]:
    """My tokens; admins may ask for someone else's with ``user_id``."""
    owner = principal.user_id if user_id is None else user_id
    if owner != principal.user_id and not principal.can("users.security"):
        raise ApiError(403, "forbidden", "You lack the 'users.security' permission.")
    return Page(items=[_token_out(t) for t in await tokens_of(session, owner)])


@router.post("/tokens", response_model=TokenCreated, status_code=201)
async def create_token(
    session: SessionDep, principal: OwnTokens, body: TokenCreate
) -> TokenCreated:
    """A token for myself, with at most the scopes of the credential making it."""
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise ApiError(422, "invalid_request", "expires_at needs a time zone.")
    user = await _user_or_404(session, principal.user_id)
    try:
        token, clear = await do_create_token(
            session,
            actor=principal.actor,
            user=user,
            name=body.name,
            scopes=tuple(body.scopes),
            expires_at=body.expires_at,
            limit_to=principal.scopes,
        )
    except AccountError as exc:
        raise _refused(exc) from exc
    return TokenCreated(**_token_out(token).model_dump(), token=clear)


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(session: SessionDep, principal: OwnTokens, token_id: int) -> Response:
    token = await session.get(ApiToken, token_id)
    if token is None or (
        token.user_id != principal.user_id and not principal.can("users.security")
    ):
        raise ApiError(404, "not_found", "No such token.")
    await do_revoke_token(session, actor=principal.actor, token=token)
    return Response(status_code=204)


# ------------------------------------------------------------------ users (admins)


@router.get("/users", response_model=Page[UserOut])
async def users(session: SessionDep, _principal: UsersReader) -> Page[UserOut]:
    return Page(items=await _users_out(session, await list_users(session)))


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(session: SessionDep, principal: UsersManager, body: UserCreate) -> UserOut:
    try:
        user = await do_create_user(
            session,
            actor=principal.actor,
            email=body.email,
            name=body.name,
            role=body.role,
            password=body.password,
        )
        for inbox_id in body.inbox_ids:
            await do_add_inbox_member(session, actor=principal.actor, inbox_id=inbox_id, user=user)
    except AccountError as exc:
        raise _refused(exc) from exc
    return (await _users_out(session, [user]))[0]


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(session: SessionDep, _principal: UsersReader, user_id: int) -> UserOut:
    return (await _users_out(session, [await _user_or_404(session, user_id)]))[0]


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(
    session: SessionDep, principal: UsersManager, user_id: int, body: UserUpdate
) -> UserOut:
    user = await _user_or_404(session, user_id)
    try:
        # Deactivation first: it locks rows before it writes to the audit chain.
        if body.is_active is False and user.is_active:
            await do_deactivate_user(session, actor=principal.actor, user=user)
        elif body.is_active is True and not user.is_active:
            await do_reactivate_user(session, actor=principal.actor, user=user)
        await do_update_user(
            session, actor=principal.actor, user=user, name=body.name, role=body.role
        )
    except AccountError as exc:
        raise _refused(exc) from exc
    return (await _users_out(session, [user]))[0]


@router.put("/users/{user_id}/inboxes/{inbox_id}", response_model=UserOut)
async def add_to_inbox(
    session: SessionDep, principal: UsersManager, user_id: int, inbox_id: int
) -> UserOut:
    user = await _user_or_404(session, user_id)
    try:
        await do_add_inbox_member(session, actor=principal.actor, inbox_id=inbox_id, user=user)
    except AccountError as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return (await _users_out(session, [user]))[0]


@router.delete("/users/{user_id}/inboxes/{inbox_id}", response_model=UserOut)
async def remove_from_inbox(
    session: SessionDep, principal: UsersManager, user_id: int, inbox_id: int
) -> UserOut:
    user = await _user_or_404(session, user_id)
    await do_remove_inbox_member(session, actor=principal.actor, inbox_id=inbox_id, user=user)
    return (await _users_out(session, [user]))[0]


@router.get("/users/{user_id}/sessions", response_model=Page[SessionOut])
async def user_sessions(
    session: SessionDep, runtime: RuntimeDep, principal: UsersSecurity, user_id: int
) -> Page[SessionOut]:
    user = await _user_or_404(session, user_id)
    rows = await live_sessions(session, user.id, runtime.settings)
    return Page(items=[_session_out(s, principal) for s in rows])


@router.delete("/users/{user_id}/sessions", response_model=Ended)
async def end_user_sessions(session: SessionDep, principal: UsersSecurity, user_id: int) -> Ended:
    user = await _user_or_404(session, user_id)
    keep = principal.session_id if user.id == principal.user_id else None
    return Ended(
        ended=await do_revoke_all_sessions(
            session, actor=principal.actor, user=user, keep_session_id=keep
        )
    )


@router.delete("/users/{user_id}/mfa", response_model=Ended)
async def reset_user_mfa(session: SessionDep, principal: UsersSecurity, user_id: int) -> Ended:
    """Reset a person's two-step verification (lost phone); their sessions end."""
    user = await _user_or_404(session, user_id)
    try:
        return Ended(ended=await do_reset_mfa(session, actor=principal.actor, user=user))
    except AccountError as exc:
        raise _refused(exc) from exc


# ------------------------------------------------------------------ policy


@router.get("/security/policy", response_model=PolicyOut)
async def get_policy(session: SessionDep, runtime: RuntimeDep, _p: PolicyAdmin) -> PolicyOut:
    return PolicyOut.model_validate({"mfa_policy": await mfa_policy(session, runtime.settings)})


@router.put("/security/policy", response_model=PolicyOut)
async def set_policy(session: SessionDep, principal: PolicyAdmin, body: PolicyUpdate) -> PolicyOut:
    await do_set_mfa_policy(session, actor=principal.actor, policy=body.mfa_policy)
    return PolicyOut(mfa_policy=body.mfa_policy)
