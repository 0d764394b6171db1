"""Graph API errors, in the exact shape Meta answers them."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi.responses import JSONResponse

ERROR_CODES_URL = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

# Titles Meta uses for the codes the simulator produces.
TITLES = {
    2: "Service temporarily unavailable",
    100: "Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131009: "Parameter value is not valid",
    131026: "Message undeliverable",
    131047: "Re-engagement message",
    131053: "Media upload error",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
}


def fbtrace_id() -> str:
    return secrets.token_urlsafe(16)[:22]


class GraphError(Exception):
    """An error answer of the Graph API; raised anywhere below a Graph route."""

    def __init__(
        self,
        code: int,
        details: str | None = None,
        *,
        http_status: int = 400,
        subcode: int | None = None,
        kind: str = "OAuthException",
        message: str | None = None,
    ) -> None:
        self.code = code
        self.details = details
        self.http_status = http_status
        self.subcode = subcode
        self.kind = kind
        title = TITLES.get(code, "Unknown error")
        # Meta prefixes WhatsApp and parameter errors with "(#code)", but not token errors.
        self.message = message or (title if code == 190 else f"(#{code}) {title}")
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.kind, "code": self.code}
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'}
        return JSONResponse(
            self.body(),
            status_code=self.http_status,
            headers=headers if self.http_status == 401 else None,
        )


def invalid_token() -> GraphError:
    return GraphError(190, http_status=401)


def invalid_parameter(details: str) -> GraphError:
    return GraphError(100, details)


def unknown_object(object_id: str, method: str) -> GraphError:
    return GraphError(
        100,
        subcode=33,
        kind="GraphMethodException",
        message=(
            f"Unsupported {method} request. Object with ID '{object_id}' does not exist, "
            "cannot be loaded due to missing permissions, or does not support this operation."
        ),
    )


def status_error(code: int, details: str) -> dict[str, Any]:
    """The ``errors[]`` item of a ``failed`` status webhook."""
    title = TITLES.get(code, "Unknown error")
    return {
        "code": code,
        "title": title,
        "message": title,
        "error_data": {"details": details},
        "href": ERROR_CODES_URL,
    }
