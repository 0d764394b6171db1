"""The ceiling for bench/ingest.py: a bare ASGI app that only does what no webhook can skip.

It reads the body, checks ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body with
``BENCH_APP_SECRET``) in constant time and answers 200 ``{"ok":true}`` (401 on a bad
signature). No framework, no database: served by the same uvicorn as wadesk, it is the most
a 2-process server can accept on this machine, so wadesk's figure is read against it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SECRET = os.environ.get("BENCH_APP_SECRET", "").encode()
PREFIX = b"sha256="
OK = (200, b'{"ok":true}')
BAD_SIGNATURE = (401, b'{"error":"bad_signature"}')


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _signature(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"x-hub-signature-256":
            return bytes(value)
    return b""


def _signed(body: bytes, header: bytes) -> bool:
    if not header.startswith(PREFIX):
        return False
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header[len(PREFIX) :].strip().lower())


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = await _read_body(receive)
    status, payload = OK if _signed(body, _signature(scope)) else BAD_SIGNATURE
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
