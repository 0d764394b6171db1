"""Cloud API deliveries (POST /webhooks/whatsapp[/{key}]), answered in plain ASGI.

This is the hottest path of the system: every customer message and every status tick comes
through it. Going through the framework (error and security middleware, locale, routing, a
Request object, FastAPI's exit stacks and its per-request telemetry check) cost about as much
CPU as the work itself, so the application's ``__call__`` hands these requests here before
anything else runs (``wadesk.app.WadeskApp``, docs/decisions/0003-webhook-fast-path.md).

The rules are unchanged: nothing is parsed before the signature is checked, nothing is
acknowledged before the raw body is committed (ingest/writer.py), processing happens after.
"""

from __future__ import annotations

import orjson
import structlog
from starlette.types import Receive, Scope, Send

from wadesk.channels.whatsapp.signature import matching_secret
from wadesk.errors import ApiError, backend_unavailable, error_body
from wadesk.inboxes.registry import InboxCredentials
from wadesk.metrics import DELIVERIES_RECEIVED, DELIVERIES_REJECTED
from wadesk.runtime import Runtime

log = structlog.get_logger(__name__)
RECEIVED = DELIVERIES_RECEIVED.labels("whatsapp")
PREFIX = "/webhooks/whatsapp"
OK = orjson.dumps({"ok": True})
JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]
# Meta's 200 carries what it needs and no more: uvicorn checks every response header against
# two regular expressions, a cost paid thousands of times a second under a burst.
OK_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(OK)).encode())]


class Disconnected(Exception):
    """The sender went away before the body arrived: nothing to answer."""


class WhatsAppDeliveries:
    """Answers a delivery; ``delivery(scope)`` says which requests are deliveries."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def answer(self, scope: Scope, receive: Receive, send: Send, key: str | None) -> None:
        try:
            await self._receive(scope, receive, key)
        except Disconnected:
            return
        except ApiError as exc:
            await _send(send, exc.status, error_body(exc.code, exc.message))
            return
        except Exception as exc:
            # Meta retries a delivery that did not get a 200: nothing is lost either way.
            if not backend_unavailable(exc):
                log.exception("webhook.error")
                await _send(send, 500, error_body("internal", "Internal server error."))
                return
            log.warning("webhook.unavailable", error=type(exc).__name__)
            body = error_body("unavailable", "The database is unavailable; try again.")
            await _send(send, 503, body, extra=[(b"retry-after", b"5")])
            return
        await send({"type": "http.response.start", "status": 200, "headers": OK_HEADERS})
        await send({"type": "http.response.body", "body": OK})

    async def _receive(self, scope: Scope, receive: Receive, key: str | None) -> None:
        runtime = self.runtime
        limit = runtime.settings.max_webhook_body_bytes
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            DELIVERIES_REJECTED.labels("whatsapp", "too_large").inc()
            raise ApiError(413, "too_large", f"Body over {limit} bytes.")
        body = await _read_body(receive, limit)
        candidates = await webhook_candidates(runtime, key)
        raw_signature = headers.get(b"x-hub-signature-256")
        signature = raw_signature.decode("latin-1") if raw_signature is not None else None
        secret = matching_secret(body, signature, {inbox.app_secret for inbox in candidates})
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
            channel_type="whatsapp", inbox_id=inbox_id, body=body, signature=signature
        )
        RECEIVED.inc()


def delivery(scope: Scope) -> tuple[bool, str | None]:
    """Whether this is a delivery, and its webhook key (None: the shared URL)."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False, None
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return False, None
    rest = path[len(PREFIX) :].rstrip("/")
    if rest == "":
        return True, None
    if rest.startswith("/") and "/" not in rest[1:]:
        return True, rest[1:]
    return False, None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            DELIVERIES_REJECTED.labels("whatsapp", "too_large").inc()
            raise ApiError(413, "too_large", f"Body over {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def webhook_candidates(runtime: Runtime, key: str | None) -> list[InboxCredentials]:
    """The inboxes whose secrets may sign a delivery to this URL (the shared one: all)."""
    if key is None:
        return await runtime.registry.by_channel("whatsapp")
    inbox = await runtime.registry.by_webhook_key(key)
    if inbox is None or inbox.channel_type != "whatsapp":
        raise ApiError(404, "not_found", "No such webhook.")
    return [inbox]


async def _send(
    send: Send, status: int, body: object, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    content = orjson.dumps(body)
    length = (b"content-length", str(len(content)).encode())
    headers = [*JSON_HEADERS, length, *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
