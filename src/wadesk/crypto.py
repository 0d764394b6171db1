"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from WADESK_SECRET_KEY.

Columns typed :class:`EncryptedText` are encrypted on write and decrypted on read, so a
channel's access token or app secret can never be stored in the clear by forgetting a call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from wadesk.config import get_settings


@lru_cache
def _fernet(secret_key: str) -> Fernet:
    derived = hashlib.sha256(b"wadesk-encryption-v1:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(value: str) -> str:
    return _fernet(get_settings().resolved_secret_key()).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(get_settings().resolved_secret_key()).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("secret cannot be decrypted: WADESK_SECRET_KEY changed?") from exc


def keyed_hash(value: str, purpose: str) -> str:
    """A stable HMAC of a value (API tokens, lookups), keyed by the secret key and a purpose."""
    key = hashlib.sha256(
        f"wadesk-{purpose}:".encode() + get_settings().resolved_secret_key().encode()
    )
    return hmac.new(key.digest(), value.encode(), hashlib.sha256).hexdigest()


class EncryptedText(TypeDecorator[str]):
    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return encrypt(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return decrypt(str(value))
