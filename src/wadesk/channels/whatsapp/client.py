"""WhatsApp Cloud API over HTTP. The only place that knows the Graph API's request shapes."""

from __future__ import annotations

from typing import Any

from wadesk.channels.base import (
    ChannelCapabilities,
    ChannelSendError,
    OutboundMessage,
    SendResult,
)
from wadesk.channels.whatsapp.errors import ACCOUNT_CODES, is_transient
from wadesk.httpclient import HttpClient, HttpError, HttpResponse, HttpTimeout

MB = 1024 * 1024
CAPABILITIES = ChannelCapabilities(
    service_window_hours=24,
    supports_templates=True,
    max_media_bytes={
        "image": 5 * MB,
        "audio": 16 * MB,
        "video": 16 * MB,
        "document": 100 * MB,
        "sticker": 500 * 1024,
    },
)


def build_payload(message: OutboundMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.recipient,
        "type": message.type,
    }
    if message.type == "text":
        payload["text"] = {"body": message.text or "", "preview_url": True}
    elif message.type in ("image", "audio", "video", "document", "sticker"):
        media: dict[str, Any] = {}
        if message.media_id:
            media["id"] = message.media_id
        elif message.media_link:
            media["link"] = message.media_link
        if message.text and message.type in ("image", "video", "document"):
            media["caption"] = message.text
        if message.type == "document" and message.content.get("filename"):
            media["filename"] = message.content["filename"]
        payload[message.type] = media
    elif message.type == "reaction":
        payload["reaction"] = {
            "message_id": message.content["message_id"],
            "emoji": message.content.get("emoji", ""),
        }
    elif message.type == "template":
        template: dict[str, Any] = {
            "name": message.content["name"],
            "language": {"code": message.content["language"]},
        }
        if message.content.get("components"):
            template["components"] = message.content["components"]
        payload["template"] = template
    elif message.type == "location":
        payload["location"] = {
            key: message.content[key]
            for key in ("latitude", "longitude", "name", "address")
            if key in message.content
        }
    elif message.type == "interactive":
        payload["interactive"] = message.content["interactive"]
    else:
        raise ValueError(f"cannot send messages of type {message.type!r}")
    if message.reply_to_external_id and message.type != "reaction":
        payload["context"] = {"message_id": message.reply_to_external_id}
    if message.tracking:
        payload["biz_opaque_callback_data"] = message.tracking
    return payload


def _error_from_response(response: HttpResponse) -> ChannelSendError:
    code = f"http_{response.status_code}"
    title = response.reason_phrase or "error"
    try:
        error = response.json().get("error", {})
        if isinstance(error, dict):
            if error.get("code") is not None:
                code = str(error["code"])
            details = error.get("error_data", {})
            detail = details.get("details") if isinstance(details, dict) else None
            title = str(detail or error.get("message") or title)
    except ValueError:
        pass
    transient = is_transient(code)
    # A gateway's 502/504 without Graph's error body: the request may have reached Graph.
    maybe_sent = False
    if code.startswith("http_"):
        transient = response.status_code >= 500 or response.status_code == 429
        maybe_sent = response.status_code in (502, 504)
        code = "http_5xx" if response.status_code >= 500 else code
    retry_after = None
    if response.headers.get("retry-after", "").isdigit():
        retry_after = float(response.headers["retry-after"])
    return ChannelSendError(
        code,
        title,
        transient=transient,
        retry_after=retry_after,
        account_problem=code in ACCOUNT_CODES,
        maybe_sent=maybe_sent,
    )


class WhatsAppClient:
    """One business number's view of the Graph API."""

    capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        http: HttpClient,
        graph_url: str,
        api_version: str,
        phone_number_id: str,
        access_token: str,
        business_account_id: str | None = None,
    ) -> None:
        self._http = http
        self._base = f"{graph_url.rstrip('/')}/{api_version}"
        self._phone_number_id = phone_number_id
        self._waba_id = business_account_id
        self._headers = {"Authorization": f"Bearer {access_token}"}

    async def _request(self, method: str, url: str, **kwargs: Any) -> HttpResponse:
        try:
            response = await self._http.request(method, url, headers=self._headers, **kwargs)
        except HttpTimeout as exc:
            raise ChannelSendError(
                "network", f"timeout: {exc}", transient=True, maybe_sent=exc.maybe_sent
            ) from exc
        except HttpError as exc:
            raise ChannelSendError(
                "network",
                str(exc) or type(exc).__name__,
                transient=True,
                maybe_sent=exc.maybe_sent,
            ) from exc
        if response.status_code >= 400:
            raise _error_from_response(response)
        return response

    async def send(self, message: OutboundMessage) -> SendResult:
        response = await self._request(
            "POST", f"{self._base}/{self._phone_number_id}/messages", json=build_payload(message)
        )
        try:
            return SendResult(external_id=str(response.json()["messages"][0]["id"]))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ChannelSendError(
                "131000", "unexpected answer from WhatsApp", transient=True, maybe_sent=True
            ) from exc

    async def fetch_media(self, media_id: str) -> tuple[bytes, str | None]:
        """Two steps: the media's short-lived URL, then its bytes (with the same bearer token)."""
        meta = (await self._request("GET", f"{self._base}/{media_id}")).json()
        url = meta.get("url") if isinstance(meta, dict) else None
        if not isinstance(url, str):
            raise ChannelSendError("131052", "media has no download URL", transient=True)
        response = await self._request("GET", url)
        return response.content, meta.get("mime_type")

    async def upload_media(self, data: bytes, mime_type: str, filename: str) -> str:
        response = await self._request(
            "POST",
            f"{self._base}/{self._phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": (filename, data, mime_type)},
        )
        try:
            return str(response.json()["id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ChannelSendError(
                "131053", "unexpected answer from WhatsApp to a media upload", transient=True
            ) from exc

    async def list_templates(self) -> list[dict[str, Any]]:
        if not self._waba_id:
            return []
        url: str | None = f"{self._base}/{self._waba_id}/message_templates?limit=100"
        templates: list[dict[str, Any]] = []
        while url:
            body = (await self._request("GET", url)).json()
            templates.extend(body.get("data", []))
            url = body.get("paging", {}).get("next")
        return templates

    async def create_template(self, template: dict[str, Any]) -> dict[str, Any]:
        """Submit a new message template for review: {"id", "status", "category"}."""
        if not self._waba_id:
            raise ChannelSendError("no_waba", "the inbox has no business account", transient=False)
        response = await self._request(
            "POST", f"{self._base}/{self._waba_id}/message_templates", json=template
        )
        return dict(response.json())
