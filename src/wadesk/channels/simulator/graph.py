"""The Graph API routes wadesk uses, under ``/graph/{version}/``, and the media download URL.

Tokens are checked first (401, code 190); an object that does not exist or belongs to another
token answers like Meta: 400, code 100, subcode 33.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from wadesk.channels.simulator.errors import (
    GraphError,
    invalid_parameter,
    invalid_token,
    unknown_object,
)
from wadesk.channels.simulator.media import SUPPORTED_TYPES, MediaItem, max_bytes, media_kind
from wadesk.channels.simulator.state import BusinessNumber

if TYPE_CHECKING:
    from wadesk.channels.simulator.app import Simulator

VERSION = re.compile(r"^v\d+\.\d+$")
GRAPH_METHODS = ["GET", "POST", "DELETE"]


def bearer_token(request: Request) -> str | None:
    """The access token, from the Authorization header or (as Graph allows) the query."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("access_token") or None


async def _json_body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise invalid_parameter("The request body is not valid JSON.") from exc


def graph_router(sim: Simulator) -> APIRouter:
    router = APIRouter(prefix="/graph/{version}", include_in_schema=False)

    def authorize(request: Request, version: str) -> str:
        if not VERSION.match(version):
            raise GraphError(2500, message=f"Unknown path components: /{version}")
        token = bearer_token(request)
        if token is None or not sim.known_token(token):
            raise invalid_token()
        return token

    def owned_number(object_id: str, token: str, method: str) -> BusinessNumber:
        number = sim.numbers.get(object_id)
        if number is None or number.access_token != token:
            raise unknown_object(object_id, method)
        return number

    def owned_media(media_id: str, token: str) -> MediaItem | None:
        item = sim.media.get(media_id)
        owner = sim.numbers.get(item.phone_number_id) if item else None
        return item if owner is not None and owner.access_token == token else None

    def owned_waba(waba_id: str, token: str, method: str) -> str:
        if not any(n.waba_id == waba_id and n.access_token == token for n in sim.numbers.values()):
            raise unknown_object(waba_id, method)
        return waba_id

    @router.post("/{object_id}/messages")
    async def send_message(version: str, object_id: str, request: Request) -> dict[str, Any]:
        try:
            token = authorize(request, version)
            number = owned_number(object_id, token, "post")
            body = await _json_body(request)
        except GraphError as exc:
            sim.stats.reject(None, exc.code, exc.http_status)
            raise
        return await sim.handle_send(number, body)

    @router.post("/{object_id}/media")
    async def upload_media(version: str, object_id: str, request: Request) -> dict[str, str]:
        number = owned_number(object_id, authorize(request, version), "post")
        form = await request.form()
        if form.get("messaging_product") != "whatsapp":
            raise invalid_parameter("Param messaging_product must be 'whatsapp'.")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise invalid_parameter("The parameter file is required.")
        declared = form.get("type")
        mime_type = declared if isinstance(declared, str) and declared else upload.content_type
        kind = media_kind(mime_type or "")
        if kind is None:
            accepted = ", ".join(sorted(t for types in SUPPORTED_TYPES.values() for t in types))
            raise GraphError(
                131053,
                f"Param file must be a file with one of the following types: {accepted}. "
                f"Received file of type '{mime_type}'.",
            )
        data = await upload.read()
        if not data:
            raise invalid_parameter("The parameter file is empty.")
        if len(data) > max_bytes(kind):
            raise GraphError(
                131053, f"Param file must be a {kind} of at most {max_bytes(kind)} bytes."
            )
        item = sim.save_media(number.phone_number_id, data, str(mime_type), upload.filename)
        return {"id": item.id}

    @router.get("/{object_id}/message_templates")
    async def list_templates(version: str, object_id: str, request: Request) -> dict[str, Any]:
        waba_id = owned_waba(object_id, authorize(request, version), "get")
        query = request.query_params
        return sim.templates.page(
            waba_id,
            fields=query.get("fields"),
            limit=query.get("limit"),
            after=query.get("after"),
            url=f"{sim.public_url}/graph/{version}/{waba_id}/message_templates",
        )

    @router.post("/{object_id}/message_templates")
    async def create_template(version: str, object_id: str, request: Request) -> dict[str, str]:
        waba_id = owned_waba(object_id, authorize(request, version), "post")
        template = sim.create_template(waba_id, await _json_body(request))
        return {"id": template.id, "status": template.status, "category": template.category}

    @router.get("/{object_id}")
    async def get_object(version: str, object_id: str, request: Request) -> dict[str, Any]:
        token = authorize(request, version)
        item = owned_media(object_id, token)
        if item is not None:
            expected = request.query_params.get("phone_number_id")
            if expected is not None and expected != item.phone_number_id:
                raise unknown_object(object_id, "get")
            download = sim.media.new_download_token(item.id)
            return {
                "messaging_product": "whatsapp",
                "url": f"{sim.public_url}/media-download/{download}",
                "mime_type": item.mime_type,
                "sha256": item.sha256,
                "file_size": len(item.data),
                "id": item.id,
            }
        number = owned_number(object_id, token, "get")
        return {
            "verified_name": number.verified_name,
            "code_verification_status": "VERIFIED",
            "display_phone_number": number.display_phone_number,
            "quality_rating": "GREEN",
            "platform_type": "CLOUD_API",
            "throughput": {"level": "STANDARD"},
            "id": number.phone_number_id,
        }

    @router.delete("/{object_id}")
    async def delete_media(version: str, object_id: str, request: Request) -> dict[str, bool]:
        if owned_media(object_id, authorize(request, version)) is None:
            raise unknown_object(object_id, "delete")
        sim.media.delete(object_id)
        return {"success": True}

    @router.api_route("/{rest:path}", methods=GRAPH_METHODS)
    async def unknown_path(version: str, rest: str, request: Request) -> None:
        authorize(request, version)
        raise GraphError(2500, message=f"Unknown path components: /{rest}")

    return router


def media_download_router(sim: Simulator) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/media-download/{token}")
    async def download(token: str, request: Request) -> Response:
        item = sim.media.by_download_token(token)
        if item is None:
            raise GraphError(100, "The media URL expired or does not exist.", http_status=404)
        owner = sim.numbers.get(item.phone_number_id)
        if owner is None or bearer_token(request) != owner.access_token:
            raise invalid_token()
        return Response(
            item.data,
            media_type=item.mime_type,
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
        )

    return router
