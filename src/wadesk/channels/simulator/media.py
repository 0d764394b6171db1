"""Media kept by the simulator: uploads by the business and files sent by customers.

Downloads work in two steps like Meta's: ``GET /{media_id}`` gives a URL that expires after a
few minutes, and that URL answers only with the owning number's bearer token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from wadesk.channels.simulator.state import new_numeric_id

MB = 1024 * 1024
SUPPORTED_TYPES: dict[str, frozenset[str]] = {
    "image": frozenset({"image/jpeg", "image/png"}),
    "sticker": frozenset({"image/webp"}),
    "audio": frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
    "video": frozenset({"video/mp4", "video/3gpp"}),
    "document": frozenset(
        {
            "text/plain",
            "application/pdf",
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        }
    ),
}
MAX_BYTES = {"image": 5 * MB, "sticker": 500 * 1024, "audio": 16 * MB, "video": 16 * MB}
MAX_DOCUMENT_BYTES = 100 * MB


def media_kind(mime_type: str) -> str | None:
    """image, sticker, audio, video or document; None when WhatsApp does not take the type."""
    base = mime_type.split(";", 1)[0].strip().lower()
    return next((kind for kind, types in SUPPORTED_TYPES.items() if base in types), None)


def max_bytes(kind: str) -> int:
    return MAX_BYTES.get(kind, MAX_DOCUMENT_BYTES)


@dataclass
class MediaItem:
    id: str
    phone_number_id: str  # the business number that owns it
    data: bytes
    mime_type: str
    filename: str | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class MediaStore:
    def __init__(self, *, url_ttl_seconds: float = 300.0) -> None:
        self.url_ttl_seconds = url_ttl_seconds
        self._items: dict[str, MediaItem] = {}
        self._urls: dict[str, tuple[str, float]] = {}  # token -> (media id, expiry)

    def add(
        self, phone_number_id: str, data: bytes, mime_type: str, filename: str | None = None
    ) -> MediaItem:
        item = MediaItem(new_numeric_id(), phone_number_id, data, mime_type, filename)
        self._items[item.id] = item
        return item

    def get(self, media_id: str) -> MediaItem | None:
        return self._items.get(media_id)

    def delete(self, media_id: str) -> None:
        self._items.pop(media_id, None)

    def new_download_token(self, media_id: str) -> str:
        now = time.monotonic()
        self._urls = {t: (m, exp) for t, (m, exp) in self._urls.items() if exp > now}
        token = secrets.token_urlsafe(24)
        self._urls[token] = (media_id, now + self.url_ttl_seconds)
        return token

    def by_download_token(self, token: str) -> MediaItem | None:
        """The media behind an unexpired download URL."""
        found = self._urls.get(token)
        if found is None or found[1] <= time.monotonic():
            return None
        return self._items.get(found[0])
