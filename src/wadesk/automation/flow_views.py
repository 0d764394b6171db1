"""Admin pages of guided flows: the list (with a new-flow form) and a flow's page (JSON editor,
server-side validation, a preview of its steps, counters, versions). Included by views.py."""

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
    do_create_flow,
    do_delete_flow,
    do_update_flow,
)
from wadesk.automation.api import flow_detail
from wadesk.automation.flows import EXAMPLE_DEFINITION, describe, validate_definition
from wadesk.automation.models import Flow
from wadesk.automation.page_common import FLASH, Manager, visible_inboxes
from wadesk.automation.rules import RuleInvalid
from wadesk.deps import SessionDep
from wadesk.inboxes.models import Inbox
from wadesk.web.pages import PageError, redirect, render

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=100_000)]


def _definition(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        message = f"definition is not valid JSON: {exc}"
        raise RuleInvalid("invalid_json", message, "definition") from exc


async def _inboxes(session: AsyncSession, auth: SessionAuth) -> dict[int, Inbox]:
    return {i.id: i for i in await visible_inboxes(session, auth)}


async def _flow(session: AsyncSession, auth: SessionAuth, flow_id: int) -> Flow:
    flow = await session.get(Flow, flow_id)
    if flow is None or not auth.principal.can_see_inbox(flow.inbox_id):
        raise PageError(404, "Not found", "No such flow.")
    return flow


async def _list_page(
    request: Request,
    session: AsyncSession,
    auth: SessionAuth,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    inboxes = await _inboxes(session, auth)
    flows = (
        await session.scalars(
            select(Flow).where(Flow.inbox_id.in_(list(inboxes))).order_by(Flow.inbox_id, Flow.name)
        )
    ).all()
    return render(
        request,
        "automation/flows.html",
        {
            "flows": flows,
            "inboxes": inboxes,
            "form": form or {"definition": json.dumps(EXAMPLE_DEFINITION, indent=2)},
            "error": error,
            "flash": FLASH.get(request.query_params.get("done", "")),
        },
        auth=auth,
        status=status,
    )


@router.get("/admin/automation/flows")
async def flows_page(request: Request, session: SessionDep, auth: Manager) -> Response:
    return await _list_page(request, session, auth)


@router.post("/admin/automation/flows")
async def create_flow(
    request: Request,
    session: SessionDep,
    auth: Manager,
    name: Text = "",
    inbox_id: Text = "",
    definition: Text = "",
) -> Response:
    form = {"name": name, "inbox_id": inbox_id, "definition": definition}
    inboxes = await _inboxes(session, auth)
    if not inbox_id.strip().isdigit() or int(inbox_id) not in inboxes:
        return await _list_page(
            request, session, auth, error="Choose the flow's inbox.", form=form, status=422
        )
    try:
        flow = await do_create_flow(
            session,
            actor=auth.principal.actor,
            inbox_id=int(inbox_id),
            data={"name": name, "definition": _definition(definition)},
        )
    except (RuleInvalid, AutomationInvalid) as exc:
        return await _list_page(request, session, auth, error=str(exc), form=form, status=422)
    return redirect(f"/admin/automation/flows/{flow.id}?done=created")


async def _flow_page(
    request: Request,
    session: AsyncSession,
    auth: SessionAuth,
    flow: Flow,
    *,
    definition: str | None = None,
    preview: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """``definition``: the text as submitted (kept on an error or a preview of an unsaved
    change); ``preview``: the definition whose steps are shown (the saved one by default)."""
    return render(
        request,
        "automation/flow.html",
        {
            "flow": flow,
            "detail": await flow_detail(session, flow),
            "inbox": await session.get(Inbox, flow.inbox_id),
            "definition": definition
            if definition is not None
            else json.dumps(flow.definition, indent=2, ensure_ascii=False),
            "steps": describe(preview if preview is not None else flow.definition),
            "previewing": preview is not None,
            "error": error,
            "flash": FLASH.get(request.query_params.get("done", "")),
        },
        auth=auth,
        status=status,
    )


@router.get("/admin/automation/flows/{flow_id}")
async def flow_page(request: Request, session: SessionDep, auth: Manager, flow_id: int) -> Response:
    return await _flow_page(request, session, auth, await _flow(session, auth, flow_id))


@router.post("/admin/automation/flows/{flow_id}")
async def save_flow(
    request: Request,
    session: SessionDep,
    auth: Manager,
    flow_id: int,
    name: Text = "",
    definition: Text = "",
    enabled: Text = "",
    preview: Text = "",
) -> Response:
    """Save (a changed definition is the next version), or with ``preview`` only check the
    definition and show its steps, saving nothing."""
    flow = await _flow(session, auth, flow_id)
    try:
        data = _definition(definition)
        if preview:
            shown = validate_definition(data)
            return await _flow_page(
                request, session, auth, flow, definition=definition, preview=shown
            )
        await do_update_flow(
            session,
            actor=auth.principal.actor,
            flow=flow,
            data={"name": name, "definition": data, "enabled": bool(enabled)},
        )
    except (RuleInvalid, AutomationInvalid) as exc:  # checked before anything changed
        return await _flow_page(
            request, session, auth, flow, definition=definition, error=str(exc), status=422
        )
    return redirect(f"/admin/automation/flows/{flow_id}?done=saved")


@router.post("/admin/automation/flows/{flow_id}/delete")
async def delete_flow(session: SessionDep, auth: Manager, flow_id: int) -> Response:
    flow = await _flow(session, auth, flow_id)
    await do_delete_flow(session, actor=auth.principal.actor, flow=flow)
    return redirect("/admin/automation/flows?done=deleted")
