"""Routing pages: my availability, the supervisors' live queue (reassign by hand), routing
settings and rules (admins)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from wadesk.accounts.access import SessionAuth
from wadesk.accounts.models import InboxMember
from wadesk.conversations.actions import SendRefused
from wadesk.conversations.queries import get_conversation
from wadesk.deps import SessionDep
from wadesk.inboxes.models import Inbox
from wadesk.routing import actions, queries
from wadesk.routing.models import AVAILABILITY, OFFLINE_BEHAVIOURS, STRATEGIES, RoutingRule
from wadesk.routing.rule_actions import do_create_rule, do_delete_rule
from wadesk.routing.schemas import Conditions
from wadesk.teams.models import Team
from wadesk.web.pages import PageError, redirect, render, signed_in

router = APIRouter(include_in_schema=False)
Self = Annotated[SessionAuth, signed_in(permission="routing.self")]
QueueReader = Annotated[SessionAuth, signed_in(permission="routing.queue")]
Supervisor = Annotated[SessionAuth, signed_in(permission="routing.supervise")]
Manager = Annotated[SessionAuth, signed_in(permission="routing.manage")]
FormText = Annotated[str, Form(max_length=2000)]


@router.get("/account/availability")
async def availability_page(request: Request, session: SessionDep, auth: Self) -> Response:
    state = await actions.get_state(session, auth.principal.user_id)
    rows = await queries.agent_rows(session, [auth.principal.user_id])
    return render(
        request,
        "routing/availability.html",
        {"state": state, "row": rows[0] if rows else None, "choices": AVAILABILITY},
        auth=auth,
    )


@router.post("/account/availability")
async def set_availability(
    request: Request, session: SessionDep, auth: Self, availability: FormText = ""
) -> Response:
    if availability not in AVAILABILITY:
        raise PageError(422, "Unknown availability", "Choose online, busy, away or offline.")
    await actions.do_set_availability(
        session,
        actor=auth.principal.actor,
        user_id=auth.principal.user_id,
        availability=availability,
    )
    return redirect("/account/availability")


@router.get("/admin/routing")
async def queue_page(request: Request, session: SessionDep, auth: QueueReader) -> Response:
    overview = await queries.queue_overview(session, auth.principal)
    inboxes = {
        i.id: i.name
        for i in (
            await session.scalars(
                select(Inbox).where(auth.principal.inbox_filter(Inbox.id)).order_by(Inbox.name)
            )
        ).all()
    }
    return render(
        request,
        "routing/queue.html",
        {
            "overview": overview,
            "inboxes": inboxes,
            "error": request.query_params.get("error"),
        },
        auth=auth,
    )


@router.post("/admin/routing/conversations/{conversation_id}/assign")
async def reassign(
    request: Request,
    session: SessionDep,
    auth: Supervisor,
    conversation_id: int,
    user_id: FormText = "",
    force: FormText = "",
) -> Response:
    conversation = await get_conversation(session, auth.principal, conversation_id, for_update=True)
    if conversation is None:
        raise PageError(404, "Not found", "No such conversation.")
    target = int(user_id) if user_id.strip().isdigit() else None
    if (
        target is not None
        and auth.principal.inbox_ids is not None
        and await session.get(InboxMember, (conversation.inbox_id, target)) is None
    ):
        raise PageError(422, "Not in the inbox", "This person is not in the inbox.")
    try:
        await actions.do_reassign(
            session,
            actor=auth.principal.actor,
            conversation=conversation,
            user_id=target,
            force=force == "on",
        )
    except (actions.RoutingError, SendRefused) as exc:
        return redirect(f"/admin/routing?error={exc.code}")
    return redirect("/admin/routing")


async def _settings_page(
    request: Request, session: SessionDep, auth: SessionAuth, *, error: str | None = None
) -> Response:
    inboxes = list((await session.scalars(select(Inbox).order_by(Inbox.name))).all())
    settings = {i.id: await actions.inbox_settings(session, i.id) for i in inboxes}
    rules = (
        await session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
    ).all()
    teams = list((await session.scalars(select(Team).order_by(Team.name))).all())
    return render(
        request,
        "routing/settings.html",
        {
            "config": await actions.load_config(session),
            "inboxes": inboxes,
            "settings": settings,
            "rules": rules,
            "teams": teams,
            "strategies": STRATEGIES,
            "behaviours": OFFLINE_BEHAVIOURS,
            "error": error,
        },
        auth=auth,
        status=422 if error else 200,
    )


@router.get("/admin/routing/settings")
async def settings_page(request: Request, session: SessionDep, auth: Manager) -> Response:
    return await _settings_page(request, session, auth)


def _int(value: str, default: int | None = None) -> int | None:
    value = value.strip()
    return int(value) if value.lstrip("-").isdigit() else default


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]


@router.post("/admin/routing/config")
async def save_config(
    request: Request,
    session: SessionDep,
    auth: Manager,
    default_capacity: FormText = "5",
    languages: FormText = "",
    returns_threshold: FormText = "2",
    spend_threshold: FormText = "1000",
    frequent_threshold: FormText = "3",
    first_response_seconds: FormText = "60",
) -> Response:
    try:
        values: dict[str, Any] = {
            "default_capacity": max(0, _int(default_capacity, 5) or 0),
            "languages": _list(languages),
            "returns_threshold": max(0, _int(returns_threshold, 2) or 0),
            "spend_threshold": max(0.0, float(spend_threshold or 0)),
            "frequent_threshold": max(0, _int(frequent_threshold, 3) or 0),
            "first_response_seconds": max(0, _int(first_response_seconds, 60) or 0),
        }
        await actions.do_update_config(session, actor=auth.principal.actor, values=values)
    except (ValueError, actions.RoutingError) as exc:
        return await _settings_page(request, session, auth, error=str(exc))
    return redirect("/admin/routing/settings")


@router.post("/admin/routing/inboxes/{inbox_id}")
async def save_inbox(
    request: Request,
    session: SessionDep,
    auth: Manager,
    inbox_id: int,
    enabled: FormText = "",
    strategy: FormText = "least_loaded",
    capacity: FormText = "",
    sticky_days: FormText = "0",
    offline_behaviour: FormText = "keep",
) -> Response:
    if await session.get(Inbox, inbox_id) is None:
        raise PageError(404, "Not found", "No such inbox.")
    try:
        await actions.do_update_inbox_settings(
            session,
            actor=auth.principal.actor,
            inbox_id=inbox_id,
            values={
                "enabled": enabled == "on",
                "strategy": strategy,
                "capacity": _int(capacity),
                "sticky_days": max(0, min(365, _int(sticky_days, 0) or 0)),
                "offline_behaviour": offline_behaviour,
            },
        )
    except actions.RoutingError as exc:
        return await _settings_page(request, session, auth, error=str(exc))
    return redirect("/admin/routing/settings")


@router.post("/admin/routing/rules")
async def create_rule(
    request: Request,
    session: SessionDep,
    auth: Manager,
    name: FormText = "",
    keywords: FormText = "",
    regex: FormText = "",
    languages: FormText = "",
    business_hours: FormText = "",
    attributes: FormText = "",
    team_id: FormText = "",
    priority: FormText = "",
    labels: FormText = "",
    stop: FormText = "",
) -> Response:
    try:
        conditions = Conditions.model_validate(
            {
                "keywords": _list(keywords),
                "regex": regex.strip() or None,
                "languages": _list(languages),
                "business_hours": business_hours or None,
                "attributes": json.loads(attributes) if attributes.strip() else [],
            }
        ).model_dump()
        rule_actions: dict[str, Any] = {
            "team_id": _int(team_id),
            "priority": priority or None,
            "labels": _list(labels),
        }
        if not name.strip():
            raise ValueError("A rule needs a name.")
        await do_create_rule(
            session,
            actor=auth.principal.actor,
            values={
                "name": name.strip()[:200],
                "conditions": conditions,
                "actions": rule_actions,
                "stop": stop == "on",
            },
        )
    except (ValueError, actions.RoutingError) as exc:
        return await _settings_page(request, session, auth, error=str(exc)[:300])
    return redirect("/admin/routing/settings")


@router.post("/admin/routing/rules/{rule_id}/delete")
async def delete_rule(
    request: Request, session: SessionDep, auth: Manager, rule_id: int
) -> Response:
    rule = await session.get(RoutingRule, rule_id)
    if rule is None:
        raise PageError(404, "Not found", "No such rule.")
    await do_delete_rule(session, actor=auth.principal.actor, rule=rule)
    return redirect("/admin/routing/settings")
