"""My account: profile, password, two-step verification, sessions, API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from wadesk.accounts import totp
from wadesk.accounts.access import SessionAuth, mfa_policy, mfa_required
from wadesk.accounts.actions import (
    AccountError,
    do_begin_mfa_enrolment,
    do_change_password,
    do_confirm_mfa,
    do_create_token,
    do_disable_mfa,
    do_reauthenticate,
    do_regenerate_recovery_codes,
    do_revoke_all_sessions,
    do_revoke_session,
    do_revoke_token,
    recently_authenticated,
)
from wadesk.accounts.models import ApiToken, UserSession
from wadesk.accounts.permissions import scopes_for_role
from wadesk.accounts.queries import live_sessions, recovery_codes_left, tokens_of
from wadesk.db import utcnow
from wadesk.deps import RuntimeDep, SessionDep
from wadesk.web.pages import (
    Enrolling,
    PageError,
    PageRedirect,
    SignedIn,
    clear_session_cookie,
    redirect,
    render,
    safe_next,
)

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form(max_length=1024)]
TOKEN_EXPIRY_DAYS = (7, 30, 90, 365)


def _require_reauth(auth: SessionAuth, runtime: RuntimeDep, back_to: str) -> None:
    if not recently_authenticated(auth.web_session, runtime.settings):
        raise PageRedirect(f"/account/reauth?next={quote(back_to, safe='/')}")


async def _account_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: SessionAuth,
    *,
    token_error: str | None = None,
    status: int = 200,
) -> Response:
    user = auth.user
    policy = await mfa_policy(session, runtime.settings)
    return render(
        request,
        "account.html",
        {
            "user": user,
            "sessions": await live_sessions(session, user.id, runtime.settings),
            "tokens": await tokens_of(session, user.id),
            "codes_left": await recovery_codes_left(session, user.id) if user.has_mfa else 0,
            "mfa_required": mfa_required(policy, user.role),
            "grantable_scopes": sorted(
                scopes_for_role(user.role), key=("read", "write", "admin").index
            ),
            "expiry_days": TOKEN_EXPIRY_DAYS,
            "token_error": token_error,
            "now": utcnow(),
        },
        auth=auth,
        status=status,
    )


@router.get("/account")
async def account(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: SignedIn
) -> Response:
    return await _account_page(request, session, runtime, auth)


@router.get("/account/reauth")
async def reauth_form(request: Request, auth: Enrolling, next: str = "") -> Response:
    return render(request, "reauth.html", {"next": safe_next(next)}, auth=auth)


@router.post("/account/reauth")
async def reauth(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Enrolling,
    password: FormText = "",
    next: FormText = "",
) -> Response:
    try:
        await do_reauthenticate(
            session,
            actor=auth.principal.actor,
            user=auth.user,
            web_session=auth.web_session,
            password=password,
            settings=runtime.settings,
        )
    except AccountError as exc:
        return render(
            request,
            "reauth.html",
            {"next": safe_next(next), "error": str(exc)},
            auth=auth,
            status=401,
        )
    return redirect(safe_next(next))


@router.get("/account/password")
async def password_form(request: Request, runtime: RuntimeDep, auth: SignedIn) -> Response:
    return render(
        request, "password.html", {"min_length": runtime.settings.password_min_length}, auth=auth
    )


@router.post("/account/password")
async def change_password(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: SignedIn,
    current_password: FormText = "",
    new_password: FormText = "",
    confirm_password: FormText = "",
) -> Response:
    try:
        if new_password != confirm_password:
            raise AccountError("The two new passwords are not the same.")
        await do_change_password(
            session,
            actor=auth.principal.actor,
            user=auth.user,
            current_session_id=auth.web_session.id,
            current_password=current_password,
            new_password=new_password,
            settings=runtime.settings,
        )
    except AccountError as exc:
        return render(
            request,
            "password.html",
            {"error": str(exc), "min_length": runtime.settings.password_min_length},
            auth=auth,
            status=422,
        )
    return redirect("/account?notice=password_changed")


@router.get("/account/mfa/setup")
async def mfa_setup_form(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: Enrolling
) -> Response:
    _require_reauth(auth, runtime, "/account/mfa/setup")
    secret = await do_begin_mfa_enrolment(session, user=auth.user)
    return _mfa_setup_page(request, runtime, auth, secret)


def _mfa_setup_page(
    request: Request,
    runtime: RuntimeDep,
    auth: SessionAuth,
    secret: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    uri = totp.provisioning_uri(secret, email=auth.user.email, issuer=runtime.settings.mfa_issuer)
    return render(
        request,
        "mfa_setup.html",
        {
            "qr": totp.qr_data_uri(uri),
            "manual_key": totp.grouped(secret),
            "issuer": runtime.settings.mfa_issuer,
            "forced": auth.principal.mfa_enrollment_required,
            "error": error,
        },
        auth=auth,
        status=status,
    )


@router.post("/account/mfa/setup")
async def mfa_setup(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Enrolling,
    code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    _require_reauth(auth, runtime, "/account/mfa/setup")
    try:
        codes = await do_confirm_mfa(
            session,
            actor=auth.principal.actor,
            user=auth.user,
            code=code,
            current_session=auth.web_session,
        )
    except AccountError as exc:
        secret = await do_begin_mfa_enrolment(session, user=auth.user)
        return _mfa_setup_page(request, runtime, auth, secret, error=str(exc), status=422)
    return render(request, "recovery_codes.html", {"codes": codes, "first_time": True}, auth=auth)


@router.post("/account/mfa/recovery-codes")
async def regenerate_codes(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: SignedIn
) -> Response:
    _require_reauth(auth, runtime, "/account")
    try:
        codes = await do_regenerate_recovery_codes(
            session, actor=auth.principal.actor, user=auth.user
        )
    except AccountError as exc:
        raise PageError(409, "Cannot make recovery codes", str(exc)) from exc
    return render(request, "recovery_codes.html", {"codes": codes, "first_time": False}, auth=auth)


@router.post("/account/mfa/disable")
async def disable_mfa(session: SessionDep, runtime: RuntimeDep, auth: SignedIn) -> Response:
    _require_reauth(auth, runtime, "/account")
    try:
        await do_disable_mfa(
            session, actor=auth.principal.actor, user=auth.user, settings=runtime.settings
        )
    except AccountError as exc:
        raise PageError(409, "Two-step verification stays on", str(exc)) from exc
    return redirect("/account?notice=mfa_disabled")


@router.post("/account/sessions/{session_id}/revoke")
async def revoke_session(
    session: SessionDep, runtime: RuntimeDep, auth: SignedIn, session_id: int
) -> Response:
    target = await session.get(UserSession, session_id)
    if target is None or target.user_id != auth.user.id:
        raise PageError(404, "Not found", "No such session.")
    await do_revoke_session(session, actor=auth.principal.actor, web_session=target)
    if target.id == auth.web_session.id:
        response = redirect("/login?notice=signed_out")
        clear_session_cookie(response, runtime.settings)
        return response
    return redirect("/account?notice=session_revoked#sessions")


@router.post("/account/sessions/revoke-others")
async def revoke_other_sessions(session: SessionDep, auth: SignedIn) -> Response:
    await do_revoke_all_sessions(
        session, actor=auth.principal.actor, user=auth.user, keep_session_id=auth.web_session.id
    )
    return redirect("/account?notice=sessions_revoked#sessions")


@router.post("/account/tokens")
async def create_token(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: SignedIn,
    name: Annotated[str, Form(max_length=200)] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    expires_in_days: Annotated[int, Form(ge=0, le=3650)] = 0,
) -> Response:
    _require_reauth(auth, runtime, "/account#tokens")
    try:
        _, clear = await do_create_token(
            session,
            actor=auth.principal.actor,
            user=auth.user,
            name=name,
            scopes=tuple(scopes or ()),
            expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
            limit_to=scopes_for_role(auth.user.role),
        )
    except AccountError as exc:
        return await _account_page(
            request, session, runtime, auth, token_error=str(exc), status=422
        )
    return render(request, "token_created.html", {"token": clear, "name": name.strip()}, auth=auth)


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(session: SessionDep, auth: SignedIn, token_id: int) -> Response:
    token = await session.get(ApiToken, token_id)
    if token is None or token.user_id != auth.user.id:
        raise PageError(404, "Not found", "No such token.")
    await do_revoke_token(session, actor=auth.principal.actor, token=token)
    return redirect("/account?notice=token_revoked#tokens")
