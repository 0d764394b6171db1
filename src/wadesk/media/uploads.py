"""What WhatsApp accepts as outbound media (../shared/WHATSAPP_FACTS.md, Meta's media
reference), and storing an upload until a message sends it."""

from __future__ import annotations

import hashlib
from pathlib import PurePath

from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.actions import Actor, record
from wadesk.media.models import Upload
from wadesk.media.store import MediaStore

MB = 1024 * 1024
ACCEPTED: dict[str, frozenset[str]] = {
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
MAX_BYTES = {
    "image": 5 * MB,
    "sticker": 500 * 1024,
    "audio": 16 * MB,
    "video": 16 * MB,
    "document": 100 * MB,
}
LARGEST = max(MAX_BYTES.values())
SUFFIXES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/ogg": ".ogg",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "text/plain": ".txt",
    "application/pdf": ".pdf",
}


class UploadRefused(ValueError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def base_mime(mime_type: str | None) -> str:
    return (mime_type or "").split(";", 1)[0].strip().lower()


def kind_of(mime_type: str) -> str | None:
    base = base_mime(mime_type)
    return next((kind for kind, types in ACCEPTED.items() if base in types), None)


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.0f} KB"


def check_upload(mime_type: str | None, size: int, kind: str | None = None) -> str:
    """The WhatsApp kind of a file, or :class:`UploadRefused` (415 type, 413 size, 422)."""
    base = base_mime(mime_type)
    found = kind_of(base)
    if kind is not None and kind not in ACCEPTED:
        raise UploadRefused(422, "invalid_kind", f"type must be one of {', '.join(ACCEPTED)}.")
    if found is None or (kind is not None and base not in ACCEPTED[kind]):
        wanted = kind or "media"
        accepted = ", ".join(sorted(ACCEPTED[kind] if kind else set().union(*ACCEPTED.values())))
        raise UploadRefused(
            415,
            "unsupported_media_type",
            f"WhatsApp does not accept {base or 'this file type'} as {wanted}. Accepted: "
            f"{accepted}.",
        )
    chosen = kind or found
    if size == 0:
        raise UploadRefused(422, "empty_file", "The file is empty.")
    if size > MAX_BYTES[chosen]:
        raise UploadRefused(
            413,
            "file_too_large",
            f"The file is {_size(size)}; WhatsApp takes {chosen} files of at most "
            f"{_size(MAX_BYTES[chosen])}.",
        )
    return chosen


def clean_filename(name: str | None, mime_type: str) -> str:
    plain = PurePath((name or "").replace("\\", "/")).name.replace("\x00", "").strip()
    plain = "".join(ch for ch in plain if ch.isprintable())[:200]
    return plain or f"file{SUFFIXES.get(base_mime(mime_type), '')}"


async def do_create_upload(
    session: AsyncSession,
    *,
    actor: Actor,
    store: MediaStore,
    data: bytes,
    mime_type: str,
    filename: str | None,
    kind: str | None = None,
) -> Upload:
    """Keep a file someone will send: checked against WhatsApp's limits, stored
    content-addressed in the media store, owned by the uploader."""
    chosen = check_upload(mime_type, len(data), kind)
    base = base_mime(mime_type)
    name = clean_filename(filename, base)
    suffix = PurePath(name).suffix.lower() or SUFFIXES.get(base, "")
    key = await store.put(data, suffix=suffix)
    upload = Upload(
        user_id=actor.user_id,
        kind=chosen,
        mime_type=base,
        filename=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        media_key=key,
    )
    session.add(upload)
    await session.flush()
    await record(
        session,
        actor,
        "upload.create",
        "upload",
        upload.id,
        {"kind": chosen, "mime_type": base, "size": len(data)},
    )
    return upload
