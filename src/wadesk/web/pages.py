"""What every page route shares: templates, the signed-in person, CSRF, cookies, errors.

A page dependency (:func:`signed_in`) returns the request's :class:`SessionAuth` or sends the
browser where it must go: to the sign-in page, or to MFA enrolment when the organisation's
policy requires it and the person has not enrolled (then nothing else opens). Every POST
must carry the session's CSRF token in the ``csrf_token`` form field.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from wadesk import __version__
from wadesk.accounts.access import (
    SessionAuth,
    authenticate_session,
    csrf_ok,
    session_cookie_name,
)
from wadesk.accounts.devices import describe_device
from wadesk.config import Settings
from wadesk.crypto import keyed_hash
from wadesk.deps import RuntimeDep, SessionDep

TEMPLATES = Path(__file__).with_name("templates")
PRELOGIN_COOKIE = "wadesk_prelogin"
NOTICES = {
    "signed_out": "You are signed out.",
    "session_ended": "Your session ended. Sign in again.",
    "password_changed": "Your password was changed. Your other sessions were signed out.",
    "mfa_enabled": "Two-step verification is on.",
    "mfa_disabled": "Two-step verification is off.",
    "session_revoked": "That session was signed out.",
    "sessions_revoked": "Your other sessions were signed out.",
    "token_revoked": "The token was revoked; it stops working at once.",
    "user_created": "The person was added.",
    "user_updated": "Saved.",
    "user_deactivated": "Deactivated: their sessions and tokens ended, their open"
    " conversations went back to the queue.",
    "user_reactivated": "Reactivated. Their old tokens stay revoked.",
    "mfa_reset": "Their two-step verification was reset and their sessions ended.",
    "policy_saved": "The policy was saved.",
    "member_added": "Added to the inbox.",
    "member_removed": "Removed from the inbox.",
    "password_set": "The password was set and their sessions ended.",
    "link_created": "The link is ready: share its short URL, QR code or a snippet below.",
    "link_saved": "Saved. The short URL now leads to the new text.",
    "link_deactivated": "The link is off: its short URL answers “no longer active”.",
    "link_activated": "The link is on again.",
}


def _datetime(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = int((datetime.now(UTC) - value).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["datetime"] = _datetime
env.filters["ago"] = _ago
env.filters["device"] = describe_device
env.globals["version"] = __version__


class PageRedirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class PageError(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    auth: SessionAuth | None = None,
    status: int = 200,
) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    html = env.get_template(name).render(
        request=request, auth=auth, notice=notice, path=request.url.path, **(context or {})
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def safe_next(target: str | None, default: str = "/account") -> str:
    """Only a path on this site (no open redirect to another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        session_cookie_name(settings),
        token,
        max_age=settings.session_max_hours * 3600,
        path="/",
        httponly=True,
        secure=settings.https,
        samesite="lax",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        session_cookie_name(settings),
        path="/",
        httponly=True,
        secure=settings.https,
        samesite="lax",
    )


def prelogin_token(request: Request) -> tuple[str, bool]:
    """The login form's CSRF secret (a cookie of its own before there is a session)."""
    current = request.cookies.get(PRELOGIN_COOKIE)
    if current and 20 <= len(current) <= 100:
        return current, False
    return secrets.token_urlsafe(24), True


def prelogin_csrf(secret: str) -> str:
    return keyed_hash(secret, "login-csrf")[:43]


def set_prelogin_cookie(response: Response, settings: Settings, secret: str) -> None:
    response.set_cookie(
        PRELOGIN_COOKIE,
        secret,
        max_age=3600,
        path="/login",
        httponly=True,
        secure=settings.https,
        samesite="strict",
    )


async def current_session(
    request: Request, session: SessionDep, runtime: RuntimeDep
) -> SessionAuth | None:
    cookie = request.cookies.get(session_cookie_name(runtime.settings))
    if not cookie:
        return None
    return await authenticate_session(
        session,
        cookie,
        settings=runtime.settings,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )


MaybeSignedIn = Annotated[SessionAuth | None, Depends(current_session)]


async def check_csrf(request: Request, auth: SessionAuth, settings: Settings) -> None:
    if request.method in ("GET", "HEAD"):
        return
    form = await request.form()
    submitted = form.get("csrf_token")
    cookie = request.cookies.get(session_cookie_name(settings), "")
    if not isinstance(submitted, str) or not csrf_ok(cookie, submitted):
        raise PageError(
            403,
            "This form has expired",
            "The page was open too long or came from somewhere else. Go back, reload it and"
            " try again.",
        )


def _login_redirect(request: Request) -> PageRedirect:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = request.url.path
    return PageRedirect(f"/login?next={quote(target, safe='/')}")


def signed_in(*, permission: str | None = None, enrolment: bool = False) -> Any:
    """The page dependency: a live session, CSRF-checked on POST, MFA policy enforced."""

    async def dependency(request: Request, runtime: RuntimeDep, auth: MaybeSignedIn) -> SessionAuth:
        if auth is None:
            raise _login_redirect(request)
        if auth.principal.mfa_enrollment_required and not enrolment:
            raise PageRedirect("/account/mfa/setup")
        if permission is not None and not auth.principal.can(permission):
            raise PageError(403, "Not allowed", "Your role does not give access to this page.")
        await check_csrf(request, auth, runtime.settings)
        return auth

    return Depends(dependency)


SignedIn = Annotated[SessionAuth, signed_in()]
Enrolling = Annotated[SessionAuth, signed_in(enrolment=True)]
