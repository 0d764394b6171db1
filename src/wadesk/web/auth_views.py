"""Signing in and out: password, then the second factor when the person has one."""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from wadesk.accounts.access import csrf_ok, csrf_token_for, load_session, session_cookie_name
from wadesk.accounts.actions import do_sign_in, do_sign_in_second_factor, do_sign_out
from wadesk.deps import RuntimeDep, SessionDep
from wadesk.web.pages import (
    PRELOGIN_COOKIE,
    Enrolling,
    MaybeSignedIn,
    clear_session_cookie,
    client_ip,
    prelogin_csrf,
    prelogin_token,
    redirect,
    render,
    safe_next,
    set_prelogin_cookie,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=1024)]


@router.get("/")
async def home(auth: MaybeSignedIn) -> Response:
    # Agents live in the inbox: signing in from the front door lands there.
    if auth is None:
        return redirect("/login?next=/inbox")
    return redirect("/inbox" if auth.principal.can("conversations.read") else "/account")


def _login_page(
    request: Request,
    runtime: RuntimeDep,
    *,
    next_url: str,
    email: str = "",
    error: str | None = None,
    status: int = 200,
    retry_after: int = 0,
) -> Response:
    secret, new = prelogin_token(request)
    response = render(
        request,
        "login.html",
        {"csrf": prelogin_csrf(secret), "next": next_url, "email": email, "error": error},
        status=status,
    )
    if new:
        set_prelogin_cookie(response, runtime.settings, secret)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@router.get("/login")
async def login_form(
    request: Request, runtime: RuntimeDep, auth: MaybeSignedIn, next: str = ""
) -> Response:
    if auth is not None:
        return redirect(safe_next(next))
    return _login_page(request, runtime, next_url=safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    email: Annotated[str, Form(max_length=1024)] = "",
    password: FormText = "",
    csrf_token: FormText = "",
    next: FormText = "",
) -> Response:
    target = safe_next(next)
    secret = request.cookies.get(PRELOGIN_COOKIE, "")
    if not secret or not csrf_ok_login(secret, csrf_token):
        return _login_page(
            request,
            runtime,
            next_url=target,
            email=email,
            error="The sign-in form expired. Try again.",
            status=403,
        )
    result = await do_sign_in(
        session,
        email=email,
        password=password,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        settings=runtime.settings,
    )
    if result.status in ("invalid", "locked"):
        return _login_page(
            request,
            runtime,
            next_url=target,
            email=email,
            error=result.message,
            status=429 if result.status == "locked" else 401,
            retry_after=result.retry_after,
        )
    assert result.token is not None
    location = (
        target if result.status == "signed_in" else f"/login/mfa?next={quote(target, safe='/')}"
    )
    response = redirect(location)
    set_session_cookie(response, runtime.settings, result.token)
    response.delete_cookie(PRELOGIN_COOKIE, path="/login")
    return response


def csrf_ok_login(secret: str, submitted: str) -> bool:
    return bool(submitted) and hmac.compare_digest(prelogin_csrf(secret), submitted)


@router.get("/login/mfa")
async def mfa_form(
    request: Request, session: SessionDep, runtime: RuntimeDep, next: str = ""
) -> Response:
    cookie = request.cookies.get(session_cookie_name(runtime.settings), "")
    if await load_session(session, cookie, settings=runtime.settings, state="mfa") is None:
        return redirect("/login")
    return render(
        request, "login_mfa.html", {"csrf": csrf_token_for(cookie), "next": safe_next(next)}
    )


@router.post("/login/mfa")
async def mfa(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    code: Annotated[str, Form(max_length=64)] = "",
    csrf_token: FormText = "",
    next: FormText = "",
) -> Response:
    cookie = request.cookies.get(session_cookie_name(runtime.settings), "")
    target = safe_next(next)
    if not cookie or not csrf_ok(cookie, csrf_token):
        return redirect("/login")
    result = await do_sign_in_second_factor(
        session,
        pending_token=cookie,
        code=code,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        settings=runtime.settings,
    )
    if result.status == "expired":
        restart = redirect("/login?notice=session_ended")
        clear_session_cookie(restart, runtime.settings)
        return restart
    if result.status in ("invalid", "locked"):
        response = render(
            request,
            "login_mfa.html",
            {"csrf": csrf_token_for(cookie), "next": target, "error": result.message},
            status=429 if result.status == "locked" else 401,
        )
        if result.retry_after:
            response.headers["Retry-After"] = str(result.retry_after)
        return response
    assert result.token is not None
    done = redirect(target)
    set_session_cookie(done, runtime.settings, result.token)
    return done


@router.post("/logout")
async def logout(session: SessionDep, runtime: RuntimeDep, auth: Enrolling) -> Response:
    await do_sign_out(session, actor=auth.principal.actor, web_session=auth.web_session)
    response = redirect("/login?notice=signed_out")
    clear_session_cookie(response, runtime.settings)
    return response
