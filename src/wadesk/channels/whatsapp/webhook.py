"""The Cloud API webhook: verify, check the signature, store the raw body, answer 200.

Nothing is parsed before the signature is checked, and nothing is acknowledged before the
body is committed. Processing happens after, in the same process (ingest/processor.py).
"""

from __future__ import annotations

import hmac
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from wadesk.channels.whatsapp.signature import matching_secret
from wadesk.deps import RuntimeDep
from wadesk.errors import ApiError
from wadesk.inboxes.registry import InboxCredentials
from wadesk.metrics import DELIVERIES_RECEIVED, DELIVERIES_REJECTED
from wadesk.runtime import Runtime

router = APIRouter(prefix="/webhooks/whatsapp", tags=["webhooks"], include_in_schema=False)


async def _candidates(runtime: Runtime, key: str | None) -> list[InboxCredentials]:
    if key is None:
        return await runtime.registry.by_channel("whatsapp")
    inbox = await runtime.registry.by_webhook_key(key)
    if inbox is None or inbox.channel_type != "whatsapp":
        raise ApiError(404, "not_found", "No such webhook.")
    return [inbox]


async def _verify(
    runtime: RuntimeDep, key: str | None, mode: str | None, token: str | None, challenge: str | None
) -> Response:
    candidates = await _candidates(runtime, key)
    ok = mode == "subscribe" and token is not None and challenge is not None
    matched = False
    for inbox in candidates:
        matched |= hmac.compare_digest(inbox.verify_token.encode(), (token or "").encode())
    if not (ok and matched):
        return PlainTextResponse("verification failed", status_code=403)
    return PlainTextResponse(challenge or "")


async def _receive(runtime: Runtime, request: Request, key: str | None) -> Response:
    limit = runtime.settings.max_webhook_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        DELIVERIES_REJECTED.labels("whatsapp", "too_large").inc()
        raise ApiError(413, "too_large", f"Body over {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            DELIVERIES_REJECTED.labels("whatsapp", "too_large").inc()
            raise ApiError(413, "too_large", f"Body over {limit} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    candidates = await _candidates(runtime, key)
    header = request.headers.get("x-hub-signature-256")
    secret = matching_secret(body, header, {inbox.app_secret for inbox in candidates})
    if secret is None:
        DELIVERIES_REJECTED.labels("whatsapp", "signature").inc()
        raise ApiError(401, "bad_signature", "Missing or wrong X-Hub-Signature-256.")
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        DELIVERIES_REJECTED.labels("whatsapp", "not_json").inc()
        raise ApiError(400, "not_json", "The body is not JSON.") from exc
    inbox_id = candidates[0].id if key is not None else None
    await runtime.writer.store(
        channel_type="whatsapp", inbox_id=inbox_id, body=body, signature=header
    )
    DELIVERIES_RECEIVED.labels("whatsapp").inc()
    return JSONResponse({"ok": True})


@router.get("")
async def verify_shared(
    runtime: RuntimeDep,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> Response:
    return await _verify(runtime, None, mode, token, challenge)


async def receive(request: Request) -> Response:
    """POST of a delivery. A plain Starlette endpoint: this is the hottest path of the system,
    and it needs none of FastAPI's dependency or body handling."""
    runtime = request.app.state.runtime
    return await _receive(runtime, request, request.path_params.get("key"))


router.add_route(router.prefix, receive, methods=["POST"], include_in_schema=False)
router.add_route(router.prefix + "/{key}", receive, methods=["POST"], include_in_schema=False)


@router.get("/{key}")
async def verify_inbox(
    runtime: RuntimeDep,
    key: str,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> Response:
    return await _verify(runtime, key, mode, token, challenge)
