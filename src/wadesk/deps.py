"""Annotated dependencies: runtime, the request's session, the current principal, access checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal, authenticate_bearer
from wadesk.errors import ApiError

if TYPE_CHECKING:
    from wadesk.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
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


async def get_principal(request: Request, session: SessionDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "Send 'Authorization: Bearer <API token>'.")
    client = request.client.host if request.client else None
    principal = await authenticate_bearer(session, token.strip(), ip=client)
    if principal is None:
        raise ApiError(401, "unauthenticated", "The API token is invalid, expired or revoked.")
    return principal


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
