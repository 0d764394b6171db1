"""/api/v1/uploads: files to send as WhatsApp media."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import UploadFile

from wadesk.deps import RuntimeDep, SessionDep, Writer
from wadesk.errors import ApiError
from wadesk.media.uploads import LARGEST, UploadRefused, do_create_upload

router = APIRouter(tags=["uploads"])


class UploadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    mime_type: str
    filename: str
    size: int
    sha256: str
    created_at: datetime


MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "type": {
                            "type": "string",
                            "enum": ["image", "video", "audio", "document", "sticker"],
                            "description": "What it will be sent as (default: from its MIME)",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/uploads",
    response_model=UploadOut,
    status_code=201,
    openapi_extra=MULTIPART_BODY,
    responses={413: {"description": "Too large"}, 415: {"description": "Type not accepted"}},
)
async def upload(
    request: Request, session: SessionDep, runtime: RuntimeDep, principal: Writer
) -> UploadOut:
    """Upload a file (multipart ``file``, optional ``type``); send it with
    ``{"type": "image", "upload_id": ...}`` on a conversation's messages. WhatsApp's limits:
    images (JPEG, PNG) 5 MB, stickers (WebP) 500 KB, audio and video 16 MB, documents 100 MB."""
    if principal.inbox_ids is not None and not principal.inbox_ids:
        raise ApiError(403, "forbidden", "You are not a member of any inbox: nothing to send to.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > LARGEST + 64 * 1024:
        raise ApiError(413, "file_too_large", "WhatsApp takes files of at most 100 MB.")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "multipart_required", "Send the file as multipart/form-data.")
    form = await request.form(max_files=1, max_fields=4)
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise ApiError(422, "file_required", "The multipart field 'file' is required.")
        kind = form.get("type")
        if kind is not None and not isinstance(kind, str):
            raise ApiError(422, "invalid_kind", "type must be a string.")
        data = await part.read(LARGEST + 1)
        try:
            created = await do_create_upload(
                session,
                actor=principal.actor,
                store=runtime.media_store,
                data=data,
                mime_type=part.content_type or "",
                filename=part.filename,
                kind=kind or None,
            )
        except UploadRefused as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from exc
    finally:
        await form.close()
    return UploadOut.model_validate(created)
