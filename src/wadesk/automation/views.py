"""Admin pages of automation: rules per inbox (ordered, counters, review due), business hours,
greeting and away message, the FAQ bot, integrations, quick replies and WhatsApp message
templates."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import SessionAuth
from wadesk.automation.actions import (
    AutomationInvalid,
    do_create_faq,
    do_create_integration,
    do_create_quick_reply,
    do_create_rule,
    do_delete_faq,
    do_delete_integration,
    do_delete_quick_reply,
    do_delete_rule,
    do_mark_faq_reviewed,
    do_mark_reviewed,
    do_move_rule,
    do_set_inbox_automation,
    do_update_faq,
    do_update_rule,
    inbox_automation,
)
from wadesk.automation.api import faq_history, faq_test, submit_template, sync_templates
from wadesk.automation.engine import Facts, evaluate
from wadesk.automation.flow_views import router as flow_router
from wadesk.automation.hours import DAYS, describe, is_open, next_opening, parse_hours
from wadesk.automation.models import (
    AutomationRule,
    FaqEntry,
    InboxAutomation,
    Integration,
    MessageTemplate,
    QuickReply,
)
from wadesk.automation.page_common import FLASH as BASE_FLASH
from wadesk.automation.page_common import Manager, visible_inboxes
from wadesk.automation.rules import RuleInvalid
from wadesk.automation.schemas import review_due
from wadesk.automation.templates import parameter_counts, preview
from wadesk.db import utcnow
from wadesk.deps import RuntimeDep, SessionDep
from wadesk.errors import ApiError
from wadesk.inboxes.models import Inbox
from wadesk.web.pages import PageError, redirect, render

router = APIRouter(include_in_schema=False)
router.include_router(flow_router)  # /admin/automation/flows...
Text = Annotated[str, Form(max_length=20000)]
FLASH = {
    **BASE_FLASH,
    "reviewed": "Marked as reviewed.",
    "synced": "Templates synced from WhatsApp.",
    "submitted": "Submitted to WhatsApp for review.",
}
FAQ_DECISIONS = {
    "answer": "The bot answers with this entry.",
    "handoff": "The bot is not sure: a person takes over (with a note).",
    "none": "The bot stays silent (not a question it knows).",
}


def _flash(request: Request) -> str | None:
    return FLASH.get(request.query_params.get("done", ""))


async def _inbox(session: AsyncSession, auth: SessionAuth, inbox_id: int) -> Inbox:
    inbox = await session.get(Inbox, inbox_id) if auth.principal.can_see_inbox(inbox_id) else None
    if inbox is None:
        raise PageError(404, "Not found", "No such inbox.")
    return inbox


async def _rule(session: AsyncSession, auth: SessionAuth, rule_id: int) -> AutomationRule:
    rule = await session.get(AutomationRule, rule_id)
    if rule is None or not auth.principal.can_see_inbox(rule.inbox_id):
        raise PageError(404, "Not found", "No such rule.")
    return rule


def _json(value: str, field: str, default: Any) -> Any:
    if not value.strip():
        return default
    try:
        return json.loads(value)
    except ValueError as exc:
        raise RuleInvalid("invalid_json", f"{field} is not valid JSON: {exc}", field) from exc


# ------------------------------------------------------------------ index


@router.get("/admin/automation")
async def index(request: Request, session: SessionDep, auth: Manager) -> Response:
    inboxes = await visible_inboxes(session, auth)
    counts: dict[int, int] = {}
    due: dict[int, int] = {}
    for rule in (
        await session.scalars(
            select(AutomationRule).where(AutomationRule.inbox_id.in_([i.id for i in inboxes]))
        )
    ).all():
        counts[rule.inbox_id] = counts.get(rule.inbox_id, 0) + 1
        due[rule.inbox_id] = due.get(rule.inbox_id, 0) + (1 if review_due(rule) else 0)
    faq_on = dict(
        (
            await session.execute(
                select(InboxAutomation.inbox_id, InboxAutomation.faq_enabled).where(
                    InboxAutomation.inbox_id.in_([i.id for i in inboxes])
                )
            )
        )
        .tuples()
        .all()
    )
    return render(
        request,
        "automation/index.html",
        {
            "inboxes": inboxes,
            "counts": counts,
            "due": due,
            "faq_on": faq_on,
            "flash": _flash(request),
        },
        auth=auth,
    )


# ------------------------------------------------------------------ an inbox's rules and hours


async def _inbox_page(
    request: Request,
    session: AsyncSession,
    auth: SessionAuth,
    runtime: Any,
    inbox_id: int,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    tried: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    inbox = await _inbox(session, auth, inbox_id)
    rules = list(
        (
            await session.scalars(
                select(AutomationRule)
                .where(AutomationRule.inbox_id == inbox_id)
                .order_by(AutomationRule.position, AutomationRule.id)
            )
        ).all()
    )
    settings = await inbox_automation(session, inbox_id)
    hours = parse_hours(settings.timezone, settings.schedule, settings.holidays)
    now = utcnow()
    return render(
        request,
        "automation/inbox.html",
        {
            "inbox": inbox,
            "rules": rules,
            "due": {r.id: review_due(r) for r in rules},
            "settings": settings,
            "days": DAYS,
            "open_now": is_open(hours, now),
            "next_opening": describe(hours, next_opening(hours, now)),
            "integrations": (await session.scalars(select(Integration.name))).all(),
            "error": error,
            "form": form or {},
            "tried": tried,
            "flash": _flash(request),
        },
        auth=auth,
        status=status,
    )


@router.get("/admin/automation/inboxes/{inbox_id}")
async def inbox_page(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: Manager, inbox_id: int
) -> Response:
    return await _inbox_page(request, session, auth, runtime, inbox_id)


@router.post("/admin/automation/inboxes/{inbox_id}/rules")
async def create_rule(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Manager,
    inbox_id: int,
    name: Text = "",
    trigger: Text = "message",
    conditions: Text = "",
    actions: Text = "",
    after_handoff: Text = "",
) -> Response:
    await _inbox(session, auth, inbox_id)
    form = {"name": name, "trigger": trigger, "conditions": conditions, "actions": actions}
    try:
        await do_create_rule(
            session,
            actor=auth.principal.actor,
            inbox_id=inbox_id,
            data={
                "name": name,
                "trigger": trigger,
                "conditions": _json(conditions, "conditions", {}),
                "actions": _json(actions, "actions", []),
                "after_handoff": bool(after_handoff),
            },
        )
    except RuleInvalid as exc:
        return await _inbox_page(
            request, session, auth, runtime, inbox_id, error=str(exc), form=form, status=422
        )
    return redirect(f"/admin/automation/inboxes/{inbox_id}?done=created")


@router.post("/admin/automation/inboxes/{inbox_id}/hours")
async def save_hours(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Manager,
    inbox_id: int,
    timezone: Text = "UTC",
    holidays: Text = "",
    greeting_enabled: Text = "",
    greeting_text: Text = "",
    greeting_after_days: Text = "30",
    away_enabled: Text = "",
    away_text: Text = "",
) -> Response:
    await _inbox(session, auth, inbox_id)
    form = await request.form()
    schedule: dict[str, list[list[str]]] = {}
    for day in DAYS:
        start, end = str(form.get(f"{day}_start") or ""), str(form.get(f"{day}_end") or "")
        if start and end:
            schedule[day] = [[start, end]]
    try:
        days = int(greeting_after_days or 30)
    except ValueError:
        days = 0
    try:
        await do_set_inbox_automation(
            session,
            actor=auth.principal.actor,
            inbox_id=inbox_id,
            data={
                "timezone": timezone.strip() or "UTC",
                "schedule": schedule,
                "holidays": [
                    h.strip() for h in holidays.replace(",", "\n").splitlines() if h.strip()
                ],
                "greeting_enabled": bool(greeting_enabled),
                "greeting_text": greeting_text,
                "greeting_after_days": days,
                "away_enabled": bool(away_enabled),
                "away_text": away_text,
            },
        )
    except AutomationInvalid as exc:
        return await _inbox_page(
            request, session, auth, runtime, inbox_id, error=str(exc), status=422
        )
    return redirect(f"/admin/automation/inboxes/{inbox_id}?done=saved#hours")


@router.post("/admin/automation/inboxes/{inbox_id}/try")
async def try_rules(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Manager,
    inbox_id: int,
    text: Text = "",
) -> Response:
    inbox = await _inbox(session, auth, inbox_id)
    rules = await runtime.automation.ruleset(session, inbox_id)
    settings = await inbox_automation(session, inbox_id)
    hours = parse_hours(settings.timezone, settings.schedule, settings.holidays)
    chosen = evaluate(
        rules,
        "message",
        Facts.of(text, {}, inbox.channel_type, is_open(hours, utcnow())),
        taken_over=False,
    )
    tried = {
        "text": text,
        "rule": chosen[0].name if chosen else None,
        "captures": chosen[1] if chosen else {},
    }
    return await _inbox_page(request, session, auth, runtime, inbox_id, tried=tried)


# ------------------------------------------------------------------ one rule


async def _rule_page(
    request: Request,
    session: AsyncSession,
    auth: SessionAuth,
    rule: AutomationRule,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    inbox = await session.get(Inbox, rule.inbox_id)
    return render(
        request,
        "automation/rule.html",
        {
            "rule": rule,
            "inbox": inbox,
            "review_due": review_due(rule),
            "conditions": (form or {}).get("conditions")
            or json.dumps(rule.conditions or {}, indent=2, ensure_ascii=False),
            "actions": (form or {}).get("actions")
            or json.dumps(rule.actions or [], indent=2, ensure_ascii=False),
            "error": error,
            "flash": _flash(request),
        },
        auth=auth,
        status=status,
    )


@router.get("/admin/automation/rules/{rule_id}")
async def rule_page(request: Request, session: SessionDep, auth: Manager, rule_id: int) -> Response:
    return await _rule_page(request, session, auth, await _rule(session, auth, rule_id))


@router.post("/admin/automation/rules/{rule_id}")
async def save_rule(
    request: Request,
    session: SessionDep,
    auth: Manager,
    rule_id: int,
    name: Text = "",
    trigger: Text = "message",
    conditions: Text = "",
    actions: Text = "",
    after_handoff: Text = "",
    enabled: Text = "",
) -> Response:
    rule = await _rule(session, auth, rule_id)
    try:
        await do_update_rule(
            session,
            actor=auth.principal.actor,
            rule=rule,
            data={
                "name": name,
                "trigger": trigger,
                "conditions": _json(conditions, "conditions", {}),
                "actions": _json(actions, "actions", []),
                "after_handoff": bool(after_handoff),
                "enabled": bool(enabled),
            },
        )
    except RuleInvalid as exc:
        return await _rule_page(
            request,
            session,
            auth,
            rule,
            error=str(exc),
            form={"conditions": conditions, "actions": actions},
            status=422,
        )
    return redirect(f"/admin/automation/rules/{rule_id}?done=saved")


@router.post("/admin/automation/rules/{rule_id}/review")
async def review_rule(session: SessionDep, auth: Manager, rule_id: int) -> Response:
    rule = await _rule(session, auth, rule_id)
    await do_mark_reviewed(session, actor=auth.principal.actor, rule=rule)
    return redirect(f"/admin/automation/rules/{rule_id}?done=reviewed")


@router.post("/admin/automation/rules/{rule_id}/move")
async def move_rule(
    session: SessionDep, auth: Manager, rule_id: int, offset: Text = "0"
) -> Response:
    rule = await _rule(session, auth, rule_id)
    step = -1 if offset.strip() == "-1" else 1
    await do_move_rule(session, actor=auth.principal.actor, rule=rule, offset=step)
    return redirect(f"/admin/automation/inboxes/{rule.inbox_id}?done=saved")


@router.post("/admin/automation/rules/{rule_id}/delete")
async def delete_rule(session: SessionDep, auth: Manager, rule_id: int) -> Response:
    rule = await _rule(session, auth, rule_id)
    inbox_id = rule.inbox_id
    await do_delete_rule(session, actor=auth.principal.actor, rule=rule)
    return redirect(f"/admin/automation/inboxes/{inbox_id}?done=deleted")


@router.post("/admin/automation/inboxes/{inbox_id}/faq")
async def save_faq_settings(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Manager,
    inbox_id: int,
    faq_enabled: Text = "",
    faq_threshold: Text = "80",
) -> Response:
    await _inbox(session, auth, inbox_id)
    try:
        threshold = int(faq_threshold.strip() or 80)
    except ValueError:
        threshold = -1
    try:
        await do_set_inbox_automation(
            session,
            actor=auth.principal.actor,
            inbox_id=inbox_id,
            data={"faq_enabled": bool(faq_enabled), "faq_threshold": threshold},
        )
    except AutomationInvalid as exc:
        return await _inbox_page(
            request, session, auth, runtime, inbox_id, error=str(exc), status=422
        )
    return redirect(f"/admin/automation/inboxes/{inbox_id}?done=saved#faq")


# ------------------------------------------------------------------ FAQ bot


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


async def _faq_entry(session: AsyncSession, auth: SessionAuth, faq_id: int) -> FaqEntry:
    row = await session.get(FaqEntry, faq_id)
    if row is None or (row.inbox_id is not None and not auth.principal.can_see_inbox(row.inbox_id)):
        raise PageError(404, "Not found", "No such FAQ entry.")
    return row


async def _target_inbox(session: AsyncSession, auth: SessionAuth, inbox_id: str) -> int | None:
    """The form's inbox field: '' is shared by every inbox."""
    if not inbox_id.strip():
        return None
    if not inbox_id.strip().isdigit():
        raise PageError(404, "Not found", "No such inbox.")
    return (await _inbox(session, auth, int(inbox_id))).id


async def _faq_page(
    request: Request,
    session: AsyncSession,
    auth: SessionAuth,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    tried: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    inboxes = await visible_inboxes(session, auth)
    query = select(FaqEntry).order_by(FaqEntry.inbox_id.is_not(None), FaqEntry.id)
    if auth.principal.inbox_ids is not None:
        query = query.where(
            FaqEntry.inbox_id.is_(None) | FaqEntry.inbox_id.in_(auth.principal.inbox_ids)
        )
    entries = list((await session.scalars(query)).all())
    return render(
        request,
        "automation/faq.html",
        {
            "entries": entries,
            "due": {e.id: review_due(e) for e in entries},
            "inboxes": {i.id: i for i in inboxes},
            "error": error,
            "form": form or {},
            "tried": tried,
            "decisions": FAQ_DECISIONS,
            "flash": _flash(request),
        },
        auth=auth,
        status=status,
    )


@router.get("/admin/automation/faq")
async def faq_list(request: Request, session: SessionDep, auth: Manager) -> Response:
    return await _faq_page(request, session, auth)


@router.post("/admin/automation/faq")
async def faq_create(
    request: Request,
    session: SessionDep,
    auth: Manager,
    question: Text = "",
    alternatives: Text = "",
    answer: Text = "",
    language: Text = "",
    inbox_id: Text = "",
) -> Response:
    form = {
        "question": question,
        "alternatives": alternatives,
        "answer": answer,
        "language": language,
        "inbox_id": inbox_id,
    }
    target = await _target_inbox(session, auth, inbox_id)
    try:
        await do_create_faq(
            session,
            actor=auth.principal.actor,
            inbox_id=target,
            data={
                "question": question,
                "alternatives": _lines(alternatives),
                "answer": answer,
                "language": language,
            },
        )
    except AutomationInvalid as exc:
        return await _faq_page(request, session, auth, error=str(exc), form=form, status=422)
    return redirect("/admin/automation/faq?done=created")


@router.post("/admin/automation/faq/try")
async def faq_try(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Manager,
    text: Text = "",
    inbox_id: Text = "",
) -> Response:
    if not inbox_id.strip().isdigit():
        return await _faq_page(
            request, session, auth, error="Choose the inbox to try the question in.", status=422
        )
    inbox = await _inbox(session, auth, int(inbox_id))
    result = await faq_test(session, runtime, inbox.id, text) if text.strip() else None
    tried = {"text": text, "inbox_id": inbox.id, "inbox": inbox.name, "result": result}
    return await _faq_page(request, session, auth, tried=tried)


async def _faq_entry_page(
    request: Request,
    session: AsyncSession,
    auth: SessionAuth,
    entry: FaqEntry,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    inboxes = await visible_inboxes(session, auth)
    return render(
        request,
        "automation/faq_entry.html",
        {
            "entry": entry,
            "inboxes": {i.id: i for i in inboxes},
            "review_due": review_due(entry),
            "history": await faq_history(session, entry.id),
            "error": error,
            "flash": _flash(request),
        },
        auth=auth,
        status=status,
    )


@router.get("/admin/automation/faq/{faq_id}")
async def faq_entry(request: Request, session: SessionDep, auth: Manager, faq_id: int) -> Response:
    return await _faq_entry_page(request, session, auth, await _faq_entry(session, auth, faq_id))


@router.post("/admin/automation/faq/{faq_id}")
async def faq_save(
    request: Request,
    session: SessionDep,
    auth: Manager,
    faq_id: int,
    question: Text = "",
    alternatives: Text = "",
    answer: Text = "",
    language: Text = "",
    inbox_id: Text = "",
    enabled: Text = "",
) -> Response:
    entry = await _faq_entry(session, auth, faq_id)
    target = await _target_inbox(session, auth, inbox_id)
    try:
        await do_update_faq(
            session,
            actor=auth.principal.actor,
            entry=entry,
            data={
                "question": question,
                "alternatives": _lines(alternatives),
                "answer": answer,
                "language": language,
                "inbox_id": target,
                "enabled": bool(enabled),
            },
        )
    except AutomationInvalid as exc:  # checked before anything changed
        return await _faq_entry_page(request, session, auth, entry, error=str(exc), status=422)
    return redirect(f"/admin/automation/faq/{faq_id}?done=saved")


@router.post("/admin/automation/faq/{faq_id}/reviewed")
async def faq_reviewed(session: SessionDep, auth: Manager, faq_id: int) -> Response:
    entry = await _faq_entry(session, auth, faq_id)
    await do_mark_faq_reviewed(session, actor=auth.principal.actor, entry=entry)
    return redirect(f"/admin/automation/faq/{faq_id}?done=reviewed")


@router.post("/admin/automation/faq/{faq_id}/delete")
async def faq_delete(session: SessionDep, auth: Manager, faq_id: int) -> Response:
    entry = await _faq_entry(session, auth, faq_id)
    await do_delete_faq(session, actor=auth.principal.actor, entry=entry)
    return redirect("/admin/automation/faq?done=deleted")


# ------------------------------------------------------------------ integrations


async def _integrations_page(
    request: Request,
    session: AsyncSession,
    auth: SessionAuth,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    rows = (await session.scalars(select(Integration).order_by(Integration.name))).all()
    return render(
        request,
        "automation/integrations.html",
        {"integrations": rows, "error": error, "form": form or {}, "flash": _flash(request)},
        auth=auth,
        status=status,
    )


@router.get("/admin/automation/integrations")
async def integrations(request: Request, session: SessionDep, auth: Manager) -> Response:
    return await _integrations_page(request, session, auth)


@router.post("/admin/automation/integrations")
async def create_integration(
    request: Request,
    session: SessionDep,
    auth: Manager,
    name: Text = "",
    url: Text = "",
    method: Text = "GET",
    headers: Text = "",
    secret_header: Text = "",
    secret: Text = "",
    timeout_seconds: Text = "3",
) -> Response:
    form = {"name": name, "url": url, "method": method, "headers": headers}
    try:
        parsed_headers = json.loads(headers) if headers.strip() else {}
        timeout = float(timeout_seconds or 3)
    except ValueError:
        return await _integrations_page(
            request,
            session,
            auth,
            error="Headers are a JSON object and the timeout a number of seconds.",
            form=form,
            status=422,
        )
    try:
        await do_create_integration(
            session,
            actor=auth.principal.actor,
            data={
                "name": name,
                "url": url,
                "method": method,
                "headers": parsed_headers,
                "secret_header": secret_header or None,
                "secret": secret or None,
                "timeout_seconds": timeout,
            },
        )
    except AutomationInvalid as exc:
        return await _integrations_page(
            request, session, auth, error=str(exc), form=form, status=422
        )
    return redirect("/admin/automation/integrations?done=created")


@router.post("/admin/automation/integrations/{integration_id}/delete")
async def delete_integration(session: SessionDep, auth: Manager, integration_id: int) -> Response:
    row = await session.get(Integration, integration_id)
    if row is None:
        raise PageError(404, "Not found", "No such integration.")
    await do_delete_integration(session, actor=auth.principal.actor, integration=row)
    return redirect("/admin/automation/integrations?done=deleted")


# ------------------------------------------------------------------ quick replies


async def _quick_replies_page(
    request: Request,
    session: AsyncSession,
    auth: SessionAuth,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    inboxes = await visible_inboxes(session, auth)
    query = select(QuickReply).order_by(QuickReply.shortcut)
    if auth.principal.inbox_ids is not None:
        query = query.where(
            QuickReply.inbox_id.is_(None) | QuickReply.inbox_id.in_(auth.principal.inbox_ids)
        )
    return render(
        request,
        "automation/quick_replies.html",
        {
            "replies": (await session.scalars(query)).all(),
            "inboxes": {i.id: i for i in inboxes},
            "error": error,
            "form": form or {},
            "flash": _flash(request),
        },
        auth=auth,
        status=status,
    )


@router.get("/admin/automation/quick-replies")
async def quick_replies(request: Request, session: SessionDep, auth: Manager) -> Response:
    return await _quick_replies_page(request, session, auth)


@router.post("/admin/automation/quick-replies")
async def create_quick_reply(
    request: Request,
    session: SessionDep,
    auth: Manager,
    shortcut: Text = "",
    title: Text = "",
    text: Text = "",
    inbox_id: Text = "",
) -> Response:
    form = {"shortcut": shortcut, "title": title, "text": text, "inbox_id": inbox_id}
    target = int(inbox_id) if inbox_id.strip().isdigit() else None
    if target is not None:
        await _inbox(session, auth, target)
    try:
        await do_create_quick_reply(
            session,
            actor=auth.principal.actor,
            inbox_id=target,
            data={"shortcut": shortcut, "title": title or shortcut, "text": text},
        )
    except AutomationInvalid as exc:
        return await _quick_replies_page(
            request, session, auth, error=str(exc), form=form, status=exc.status
        )
    return redirect("/admin/automation/quick-replies?done=created")


@router.post("/admin/automation/quick-replies/{quick_reply_id}/delete")
async def delete_quick_reply(session: SessionDep, auth: Manager, quick_reply_id: int) -> Response:
    row = await session.get(QuickReply, quick_reply_id)
    if row is None or (row.inbox_id is not None and not auth.principal.can_see_inbox(row.inbox_id)):
        raise PageError(404, "Not found", "No such quick reply.")
    await do_delete_quick_reply(session, actor=auth.principal.actor, reply=row)
    return redirect("/admin/automation/quick-replies?done=deleted")


# ------------------------------------------------------------------ message templates


async def _templates_page(
    request: Request,
    session: AsyncSession,
    auth: SessionAuth,
    inbox_id: int,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    inbox = await _inbox(session, auth, inbox_id)
    rows = (
        await session.scalars(
            select(MessageTemplate)
            .where(MessageTemplate.inbox_id == inbox_id)
            .order_by(MessageTemplate.name, MessageTemplate.language)
        )
    ).all()
    previews = {}
    for row in rows:
        counts = parameter_counts(row.components or [])
        previews[row.id] = preview(
            row.components or [],
            [f"{{{{{i + 1}}}}}" for i in range(counts["body"])],
            [f"{{{{{i + 1}}}}}" for i in range(counts["header"])],
        )
    return render(
        request,
        "automation/templates.html",
        {
            "inbox": inbox,
            "templates": rows,
            "previews": previews,
            "error": error,
            "form": form or {},
            "flash": _flash(request),
        },
        auth=auth,
        status=status,
    )


@router.get("/admin/automation/inboxes/{inbox_id}/templates")
async def templates(
    request: Request, session: SessionDep, auth: Manager, inbox_id: int
) -> Response:
    return await _templates_page(request, session, auth, inbox_id)


@router.post("/admin/automation/inboxes/{inbox_id}/templates/sync")
async def sync(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: Manager, inbox_id: int
) -> Response:
    inbox = await _inbox(session, auth, inbox_id)
    try:
        await sync_templates(session, runtime, auth.principal.actor, inbox)
    except ApiError as exc:
        return await _templates_page(
            request, session, auth, inbox_id, error=exc.message, status=502
        )
    return redirect(f"/admin/automation/inboxes/{inbox_id}/templates?done=synced")


@router.post("/admin/automation/inboxes/{inbox_id}/templates")
async def submit(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Manager,
    inbox_id: int,
    name: Text = "",
    language: Text = "en_US",
    category: Text = "UTILITY",
    body: Text = "",
    footer: Text = "",
    buttons: Text = "",
) -> Response:
    inbox = await _inbox(session, auth, inbox_id)
    form = {"name": name, "language": language, "category": category, "body": body}
    data = {
        "name": name.strip(),
        "language": language.strip(),
        "category": category,
        "body": body,
        "footer": footer,
        "buttons": [b.strip() for b in buttons.split(",") if b.strip()],
    }
    try:
        await submit_template(session, runtime, auth.principal.actor, inbox, data)
    except (AutomationInvalid, ApiError) as exc:
        message = exc.message if isinstance(exc, ApiError) else str(exc)
        return await _templates_page(
            request, session, auth, inbox_id, error=message, form=form, status=422
        )
    return redirect(f"/admin/automation/inboxes/{inbox_id}/templates?done=submitted")
