"""Admin pages: people (roles, inboxes, sessions, tokens, MFA), the security policy, the audit
trail. Each route: parse the form, check the permission (page dependency), call actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from wadesk.accounts.access import SessionAuth, mfa_policy, mfa_required
from wadesk.accounts.actions import (
    AccountError,
    do_add_inbox_member,
    do_create_user,
    do_deactivate_user,
    do_reactivate_user,
    do_remove_inbox_member,
    do_reset_mfa,
    do_revoke_all_sessions,
    do_revoke_session,
    do_revoke_token,
    do_set_mfa_policy,
    do_set_password,
    do_update_user,
    recently_authenticated,
)
from wadesk.accounts.models import MFA_POLICIES, ROLES, ApiToken, User, UserSession
from wadesk.accounts.queries import inbox_ids_of, list_users, live_sessions, tokens_of
from wadesk.audit.actions import record
from wadesk.audit.api import csv_response, team_scope
from wadesk.audit.chainer import chain_pending
from wadesk.audit.models import AuditEvent
from wadesk.audit.queries import AuditFilter, actor_names, list_events, verify_chain
from wadesk.db import utcnow
from wadesk.deps import RuntimeDep, SessionDep
from wadesk.inboxes.models import Inbox
from wadesk.web.pages import PageError, PageRedirect, redirect, render, signed_in

router = APIRouter(include_in_schema=False)

UsersReader = Annotated[SessionAuth, signed_in(permission="users.read")]
UsersManager = Annotated[SessionAuth, signed_in(permission="users.manage")]
UsersSecurity = Annotated[SessionAuth, signed_in(permission="users.security")]
PolicyAdmin = Annotated[SessionAuth, signed_in(permission="security.policy")]
Auditor = Annotated[SessionAuth, signed_in(permission="audit.read")]


async def _team_auditor(auth: Annotated[SessionAuth, signed_in()]) -> SessionAuth:
    """Admins read the whole trail; supervisors the actions of their teams' members."""
    if not (auth.principal.can("audit.read") or auth.principal.can("audit.team")):
        raise PageError(
            403, "Not allowed", "The audit trail is for admins, and for supervisors of a team."
        )
    return auth


TeamAuditor = Annotated[SessionAuth, Depends(_team_auditor)]
FormText = Annotated[str, Form(max_length=1024)]
AUDIT_PAGE = 50


async def _inboxes(session: SessionDep) -> list[Inbox]:
    return list((await session.scalars(select(Inbox).order_by(Inbox.name, Inbox.id))).all())


async def _user_or_404(session: SessionDep, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise PageError(404, "Not found", "No such person.")
    return user


# ------------------------------------------------------------------ people


async def _users_page(
    request: Request,
    session: SessionDep,
    auth: SessionAuth,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    users = await list_users(session)
    return render(
        request,
        "admin/users.html",
        {
            "users": users,
            "memberships": await inbox_ids_of(session, [u.id for u in users]),
            "inboxes": {i.id: i for i in await _inboxes(session)},
            "roles": ROLES,
            "error": error,
            "form": form or {},
        },
        auth=auth,
        status=status,
    )


@router.get("/admin/users")
async def users(request: Request, session: SessionDep, auth: UsersReader) -> Response:
    return await _users_page(request, session, auth)


@router.post("/admin/users")
async def create_user(
    request: Request,
    session: SessionDep,
    auth: UsersManager,
    email: FormText = "",
    name: FormText = "",
    role: FormText = "agent",
    password: FormText = "",
) -> Response:
    try:
        user = await do_create_user(
            session,
            actor=auth.principal.actor,
            email=email,
            name=name,
            role=role,
            password=password or None,
        )
    except AccountError as exc:
        return await _users_page(
            request,
            session,
            auth,
            error=str(exc),
            form={"email": email, "name": name, "role": role},
            status=422,
        )
    return redirect(f"/admin/users/{user.id}?notice=user_created")


@router.get("/admin/users/{user_id}")
async def user_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: UsersReader,
    user_id: int,
) -> Response:
    return await _user_page(request, session, runtime, auth, user_id)


async def _user_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: SessionAuth,
    user_id: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    user = await _user_or_404(session, user_id)
    policy = await mfa_policy(session, runtime.settings)
    return render(
        request,
        "admin/user.html",
        {
            "user": user,
            "roles": ROLES,
            "inboxes": await _inboxes(session),
            "member_of": set((await inbox_ids_of(session, [user.id]))[user.id]),
            "sessions": await live_sessions(session, user.id, runtime.settings),
            "tokens": await tokens_of(session, user.id),
            "mfa_required": mfa_required(policy, user.role),
            "error": error,
            "now": utcnow(),
        },
        auth=auth,
        status=status,
    )


async def _act(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: SessionAuth,
    user: User,
    work: Any,
    notice: str,
) -> Response:
    try:
        await work
    except AccountError as exc:
        return await _user_page(
            request, session, runtime, auth, user.id, error=str(exc), status=422
        )
    return redirect(f"/admin/users/{user.id}?notice={notice}")


@router.post("/admin/users/{user_id}/profile")
async def update_user(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: UsersManager,
    user_id: int,
    name: FormText = "",
    role: FormText = "",
) -> Response:
    user = await _user_or_404(session, user_id)
    work = do_update_user(
        session, actor=auth.principal.actor, user=user, name=name or None, role=role or None
    )
    return await _act(request, session, runtime, auth, user, work, "user_updated")


@router.post("/admin/users/{user_id}/inboxes")
async def set_inboxes(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: UsersManager,
    user_id: int,
    inbox_ids: Annotated[list[int] | None, Form()] = None,
) -> Response:
    user = await _user_or_404(session, user_id)
    wanted = set(inbox_ids or [])
    current = set((await inbox_ids_of(session, [user.id]))[user.id])

    async def work() -> None:
        for inbox_id in sorted(wanted - current):
            await do_add_inbox_member(
                session, actor=auth.principal.actor, inbox_id=inbox_id, user=user
            )
        for inbox_id in sorted(current - wanted):
            await do_remove_inbox_member(
                session, actor=auth.principal.actor, inbox_id=inbox_id, user=user
            )

    return await _act(request, session, runtime, auth, user, work(), "user_updated")


@router.post("/admin/users/{user_id}/deactivate")
async def deactivate(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: UsersManager, user_id: int
) -> Response:
    user = await _user_or_404(session, user_id)
    work = do_deactivate_user(session, actor=auth.principal.actor, user=user)
    return await _act(request, session, runtime, auth, user, work, "user_deactivated")


@router.post("/admin/users/{user_id}/reactivate")
async def reactivate(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: UsersManager, user_id: int
) -> Response:
    user = await _user_or_404(session, user_id)
    work = do_reactivate_user(session, actor=auth.principal.actor, user=user)
    return await _act(request, session, runtime, auth, user, work, "user_reactivated")


def _require_reauth(auth: SessionAuth, runtime: RuntimeDep, back_to: str) -> None:
    if not recently_authenticated(auth.web_session, runtime.settings):
        raise PageRedirect(f"/account/reauth?next={quote(back_to, safe='/')}")


@router.post("/admin/users/{user_id}/password")
async def set_password(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: UsersSecurity,
    user_id: int,
    password: FormText = "",
) -> Response:
    _require_reauth(auth, runtime, f"/admin/users/{user_id}")
    user = await _user_or_404(session, user_id)
    work = do_set_password(session, actor=auth.principal.actor, user=user, password=password)
    return await _act(request, session, runtime, auth, user, work, "password_set")


@router.post("/admin/users/{user_id}/mfa/reset")
async def reset_mfa(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: UsersSecurity, user_id: int
) -> Response:
    _require_reauth(auth, runtime, f"/admin/users/{user_id}")
    user = await _user_or_404(session, user_id)
    work = do_reset_mfa(session, actor=auth.principal.actor, user=user)
    return await _act(request, session, runtime, auth, user, work, "mfa_reset")


@router.post("/admin/users/{user_id}/sessions/revoke-all")
async def end_all_sessions(session: SessionDep, auth: UsersSecurity, user_id: int) -> Response:
    user = await _user_or_404(session, user_id)
    keep = auth.web_session.id if user.id == auth.user.id else None
    await do_revoke_all_sessions(
        session, actor=auth.principal.actor, user=user, keep_session_id=keep
    )
    return redirect(f"/admin/users/{user.id}?notice=sessions_revoked#sessions")


@router.post("/admin/users/{user_id}/sessions/{session_id}/revoke")
async def end_session(
    session: SessionDep, auth: UsersSecurity, user_id: int, session_id: int
) -> Response:
    target = await session.get(UserSession, session_id)
    if target is None or target.user_id != user_id:
        raise PageError(404, "Not found", "No such session.")
    await do_revoke_session(session, actor=auth.principal.actor, web_session=target)
    return redirect(f"/admin/users/{user_id}?notice=session_revoked#sessions")


@router.post("/admin/users/{user_id}/tokens/{token_id}/revoke")
async def revoke_token(
    session: SessionDep, auth: UsersSecurity, user_id: int, token_id: int
) -> Response:
    token = await session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise PageError(404, "Not found", "No such token.")
    await do_revoke_token(session, actor=auth.principal.actor, token=token)
    return redirect(f"/admin/users/{user_id}?notice=token_revoked#tokens")


# ------------------------------------------------------------------ security policy


@router.get("/admin/security")
async def security(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: PolicyAdmin
) -> Response:
    without = {
        role: int(
            await session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.role == role, User.is_active, User.mfa_secret.is_(None))
            )
            or 0
        )
        for role in ROLES
    }
    return render(
        request,
        "admin/security.html",
        {
            "policy": await mfa_policy(session, runtime.settings),
            "policies": MFA_POLICIES,
            "without": without,
            "settings": runtime.settings,
        },
        auth=auth,
    )


@router.post("/admin/security")
async def set_policy(
    session: SessionDep, auth: PolicyAdmin, mfa_policy: FormText = "optional"
) -> Response:
    try:
        await do_set_mfa_policy(session, actor=auth.principal.actor, policy=mfa_policy)
    except AccountError as exc:
        raise PageError(422, "Not saved", str(exc)) from exc
    return redirect("/admin/security?notice=policy_saved")


# ------------------------------------------------------------------ audit trail


def _parse_day(value: str | None, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise PageError(422, "Invalid date", "Dates look like 2026-01-31.") from exc
    return day + timedelta(days=1) if end else day


def _int_or_none(value: str | None) -> int | None:
    if not value:
        return None
    if not value.strip().isdigit():
        raise PageError(422, "Invalid filter", f"{value!r} is not a number.")
    return int(value.strip())


async def _audit_filter(
    session: SessionDep, params: dict[str, str], auth: SessionAuth
) -> AuditFilter:
    user_id: int | None = None
    who = params.get("who", "").strip()
    if who:
        if who.isdigit():
            user_id = int(who)
        else:
            found = await session.scalar(select(User.id).where(User.email == who.lower()))
            user_id = found if found is not None else -1
    return AuditFilter(
        user_id=user_id,
        actor_type=params.get("actor_type") or None,
        action=params.get("action", "").strip() or None,
        target_type=params.get("target_type", "").strip() or None,
        target_id=params.get("target_id", "").strip() or None,
        conversation_id=_int_or_none(params.get("conversation_id")),
        since=_parse_day(params.get("since")),
        until=_parse_day(params.get("until"), end=True),
        within_user_ids=await team_scope(session, auth.principal),
    )


AUDIT_PARAMS = (
    "who",
    "actor_type",
    "action",
    "target_type",
    "target_id",
    "conversation_id",
    "since",
    "until",
)


def _audit_params(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "")[:100] for k in AUDIT_PARAMS}


@router.get("/admin/audit")
async def audit(request: Request, session: SessionDep, auth: TeamAuditor) -> Response:
    params = _audit_params(request)
    f = await _audit_filter(session, params, auth)
    before = _int_or_none(request.query_params.get("before"))
    rows = await list_events(session, f, before_id=before, limit=AUDIT_PAGE + 1)
    more = len(rows) > AUDIT_PAGE
    rows = rows[:AUDIT_PAGE]
    kept = {k: v for k, v in params.items() if v}
    actions = (
        await session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))
    ).all()
    return render(
        request,
        "admin/audit.html",
        {
            "events": rows,
            "names": await actor_names(session, rows),
            "params": params,
            "actions": actions,
            "query": urlencode(kept),
            "older": urlencode({**kept, "before": rows[-1].id}) if more else None,
            "newest": bool(before),
            "team_only": f.within_user_ids is not None,
        },
        auth=auth,
    )


@router.get("/admin/audit.csv")
async def audit_csv(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: TeamAuditor
) -> Response:
    f = await _audit_filter(session, _audit_params(request), auth)
    await record(session, auth.principal.actor, "audit.export", None, None, {"filter": f.as_dict()})
    return csv_response(runtime, f)


@router.post("/admin/audit/verify")
async def audit_verify(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: Auditor
) -> Response:
    key = runtime.settings.resolved_secret_key()
    await chain_pending(runtime.db, key)
    result = await verify_chain(session, key)
    return render(request, "admin/audit_verify.html", {"result": result}, auth=auth)
