"""X-Hub-Signature-256: HMAC-SHA256 of the raw body with the app secret (constant-time check)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="


def sign(body: bytes, app_secret: str) -> str:
    return PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def matching_secret(body: bytes, header: str | None, secrets: Iterable[str]) -> str | None:
    """The app secret that signed ``body``, or None. Each candidate is checked in constant time."""
    if not header or not header.startswith(PREFIX):
        return None
    given = header[len(PREFIX) :].strip().lower().encode()
    found = None
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(expected, given):
            found = secret
    return found
