"""Opaque cursors for keyset pagination: ``{"items": [...], "next_cursor": "..."}``."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Generic, TypeVar

import orjson
from pydantic import BaseModel

from wadesk.errors import ApiError

T = TypeVar("T")
# The largest id a BIGINT column holds; a larger one in a request is a client error.
MAX_ID = 2**63 - 1


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*values: int | str | datetime) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(orjson.dumps(plain)).decode().rstrip("=")


def decode_cursor(cursor: str, shape: tuple[type, ...]) -> list[int | str | datetime]:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(shape):
            raise ValueError("shape")
        values: list[int | str | datetime] = []
        for value, kind in zip(raw, shape, strict=True):
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError("naive")
                values.append(parsed)
            elif kind is int:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError("int")
                values.append(value)
            else:
                values.append(str(value))
        return values
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API gave out.") from exc


def decode_id_cursor(cursor: str) -> int:
    value = decode_cursor(cursor, (int,))[0]
    assert isinstance(value, int)
    return value
