"""Annotated dependencies: runtime, the request's session, the current principal, access checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import (
    Principal,
    authenticate_bearer,
    authenticate_session,
    csrf_ok,
    session_cookie_name,
)
from wadesk.errors import ApiError

if TYPE_CHECKING:
    from wadesk.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:  # async: no threadpool hop
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed once, at the end of the route."""
    async with runtime.db.session() as session:
        yield session


# scope="function": the transaction commits before the response is sent, so a client never
# sees a success that was not committed, nor reads stale data on its next request.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_principal(request: Request, session: SessionDep, runtime: RuntimeDep) -> Principal:
    """A bearer token (API clients) or a web session cookie (the browser app). A cookie
    request that changes state must carry the session's CSRF token in ``X-CSRF-Token``."""
    client = request.client.host if request.client else None
    user_agent = request.headers.get("user-agent")
    header = request.headers.get("authorization", "")
    cookie = request.cookies.get(session_cookie_name(runtime.settings))
    if header or not cookie:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthenticated", "Send 'Authorization: Bearer <API token>'.")
        principal = await authenticate_bearer(
            session, token.strip(), ip=client, user_agent=user_agent
        )
        if principal is None:
            raise ApiError(401, "unauthenticated", "The API token is invalid, expired or revoked.")
        return principal
    auth = await authenticate_session(
        session, cookie, settings=runtime.settings, ip=client, user_agent=user_agent
    )
    if auth is None:
        raise ApiError(401, "unauthenticated", "Your session has ended: sign in again.")
    if request.method not in SAFE_METHODS and not csrf_ok(
        cookie, request.headers.get("x-csrf-token")
    ):
        raise ApiError(403, "csrf_failed", "Missing or wrong X-CSRF-Token header.")
    if auth.principal.mfa_enrollment_required:
        raise ApiError(
            403, "mfa_enrollment_required", "Set up two-step verification first (/account/mfa)."
        )
    return auth.principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_scope(scope: str) -> object:
    async def check(principal: CurrentPrincipal) -> Principal:
        if scope not in principal.scopes:
            raise ApiError(403, "forbidden", f"This token lacks the '{scope}' scope.")
        return principal

    return Depends(check)


Reader = Annotated[Principal, require_scope("read")]
Writer = Annotated[Principal, require_scope("write")]
Admin = Annotated[Principal, require_scope("admin")]


def require_permission(permission: str) -> object:
    """A dependency: the principal holds ``permission`` (role and scope; see
    accounts/permissions.py and docs/permissions.md)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            raise ApiError(403, "forbidden", f"You lack the '{permission}' permission.")
        return principal

    return Depends(check)
