"""The Cloud API webhook's verification handshake (GET). Deliveries (POST) are answered by
``fastpath.py`` before the framework sees them."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response

from wadesk.channels.whatsapp.fastpath import webhook_candidates
from wadesk.deps import RuntimeDep

router = APIRouter(prefix="/webhooks/whatsapp", tags=["webhooks"], include_in_schema=False)


async def _verify(
    runtime: RuntimeDep, key: str | None, mode: str | None, token: str | None, challenge: str | None
) -> Response:
    candidates = await webhook_candidates(runtime, key)
    ok = mode == "subscribe" and token is not None and challenge is not None
    matched = False
    for inbox in candidates:
        matched |= hmac.compare_digest(inbox.verify_token.encode(), (token or "").encode())
    if not (ok and matched):
        return PlainTextResponse("verification failed", status_code=403)
    return PlainTextResponse(challenge or "")


@router.get("")
async def verify_shared(
    runtime: RuntimeDep,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> Response:
    return await _verify(runtime, None, mode, token, challenge)


@router.get("/{key}")
async def verify_inbox(
    runtime: RuntimeDep,
    key: str,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> Response:
    return await _verify(runtime, key, mode, token, challenge)
