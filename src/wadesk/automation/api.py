"""/api/v1/automation/..., /api/v1/quick-replies, /api/v1/message-templates."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Response
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from wadesk.accounts.access import Principal
from wadesk.accounts.models import User
from wadesk.automation.actions import (
    AutomationInvalid,
    do_count_quick_reply_use,
    do_create_faq,
    do_create_flow,
    do_create_integration,
    do_create_quick_reply,
    do_create_rule,
    do_delete_faq,
    do_delete_flow,
    do_delete_integration,
    do_delete_quick_reply,
    do_delete_rule,
    do_mark_faq_reviewed,
    do_mark_reviewed,
    do_move_rule,
    do_set_inbox_automation,
    do_store_templates,
    do_update_faq,
    do_update_flow,
    do_update_integration,
    do_update_quick_reply,
    do_update_rule,
    inbox_automation,
    template_submission,
)
from wadesk.automation.engine import Facts, evaluate
from wadesk.automation.faq import best_matches, decide
from wadesk.automation.hours import is_open, next_opening, parse_hours
from wadesk.automation.models import (
    AutomationRule,
    FaqDay,
    FaqEntry,
    Flow,
    FlowState,
    FlowVersion,
    Integration,
    MessageTemplate,
    QuickReply,
)
from wadesk.automation.rules import RuleInvalid
from wadesk.automation.schemas import (
    FaqDayOut,
    FaqDetailOut,
    FaqIn,
    FaqOut,
    FaqScore,
    FaqTestIn,
    FaqTestOut,
    FlowDetailOut,
    FlowIn,
    FlowOut,
    InboxAutomationIn,
    InboxAutomationOut,
    IntegrationIn,
    IntegrationOut,
    MoveIn,
    QuickReplyIn,
    QuickReplyOut,
    RenderIn,
    RenderOut,
    RuleIn,
    RuleOut,
    SyncOut,
    TemplateIn,
    TemplateOut,
    TemplateParams,
    TemplateSendIn,
    TryIn,
    TryOut,
)
from wadesk.automation.templates import parameter_counts, preview, send_components
from wadesk.automation.text import render
from wadesk.automation.worker import first_name
from wadesk.channels.base import ChannelSendError
from wadesk.channels.whatsapp.client import WhatsAppClient
from wadesk.contacts.models import Contact
from wadesk.conversations.actions import SendRefused, SendRequest, do_send_message
from wadesk.conversations.models import Conversation
from wadesk.db import utcnow
from wadesk.deps import RuntimeDep, SessionDep, require_permission
from wadesk.errors import ApiError
from wadesk.inboxes.models import Inbox
from wadesk.pagination import Page

router = APIRouter(tags=["automation"])
AutoReader = Annotated[Principal, require_permission("automation.read")]
AutoManager = Annotated[Principal, require_permission("automation.manage")]
Sender = Annotated[Principal, require_permission("conversations.write")]
S = TypeVar("S", bound=Select[Any])


def _invalid(exc: RuleInvalid | AutomationInvalid) -> ApiError:
    status = exc.status if isinstance(exc, AutomationInvalid) else 422
    return ApiError(status, exc.code, str(exc), field=exc.field)


def _visible(
    query: S,
    column: QueryableAttribute[int | None] | QueryableAttribute[int],
    principal: Principal,
    inbox_id: int | None,
    *,
    shared: bool,
) -> S | None:
    """A list narrowed to what one may see: the rows of ``inbox_id``, else of every inbox one
    sees; ``shared``: and the rows of no inbox (shared by all). None: ``inbox_id`` is not
    one's to see (an empty list, not a 404)."""
    if inbox_id is not None:
        if not principal.can_see_inbox(inbox_id):
            return None
        mine = column == inbox_id
    elif principal.inbox_ids is not None:
        mine = column.in_(principal.inbox_ids)
    else:
        return query
    return query.where(or_(mine, column.is_(None)) if shared else mine)


async def _inbox(session: AsyncSession, principal: Principal, inbox_id: int) -> Inbox:
    inbox = await session.get(Inbox, inbox_id) if principal.can_see_inbox(inbox_id) else None
    if inbox is None:
        raise ApiError(404, "not_found", "No such inbox.")
    return inbox


async def _rule(session: AsyncSession, principal: Principal, rule_id: int) -> AutomationRule:
    rule = await session.get(AutomationRule, rule_id)
    if rule is None or not principal.can_see_inbox(rule.inbox_id):
        raise ApiError(404, "not_found", "No such rule.")
    return rule


async def _conversation(
    session: AsyncSession, principal: Principal, conversation_id: int
) -> Conversation:
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or not principal.can_see_inbox(conversation.inbox_id):
        raise ApiError(404, "not_found", "No such conversation.")
    return conversation


# ------------------------------------------------------------------ rules


@router.get("/automation/inboxes/{inbox_id}/rules")
async def list_rules(session: SessionDep, principal: AutoReader, inbox_id: int) -> Page[RuleOut]:
    await _inbox(session, principal, inbox_id)
    rules = (
        await session.scalars(
            select(AutomationRule)
            .where(AutomationRule.inbox_id == inbox_id)
            .order_by(AutomationRule.position, AutomationRule.id)
        )
    ).all()
    return Page(items=[RuleOut.of(r) for r in rules])


@router.post("/automation/inboxes/{inbox_id}/rules", status_code=201)
async def create_rule(
    session: SessionDep, principal: AutoManager, inbox_id: int, body: RuleIn
) -> RuleOut:
    await _inbox(session, principal, inbox_id)
    try:
        rule = await do_create_rule(
            session,
            actor=principal.actor,
            inbox_id=inbox_id,
            data=body.model_dump(exclude_unset=True),
        )
    except RuleInvalid as exc:
        raise _invalid(exc) from exc
    return RuleOut.of(rule)


@router.get("/automation/rules/{rule_id}")
async def get_rule(session: SessionDep, principal: AutoReader, rule_id: int) -> RuleOut:
    return RuleOut.of(await _rule(session, principal, rule_id))


@router.patch("/automation/rules/{rule_id}")
async def update_rule(
    session: SessionDep, principal: AutoManager, rule_id: int, body: RuleIn
) -> RuleOut:
    rule = await _rule(session, principal, rule_id)
    try:
        await do_update_rule(
            session, actor=principal.actor, rule=rule, data=body.model_dump(exclude_unset=True)
        )
    except RuleInvalid as exc:
        raise _invalid(exc) from exc
    await session.flush()
    return RuleOut.of(rule)


@router.delete("/automation/rules/{rule_id}", status_code=204)
async def delete_rule(session: SessionDep, principal: AutoManager, rule_id: int) -> Response:
    rule = await _rule(session, principal, rule_id)
    await do_delete_rule(session, actor=principal.actor, rule=rule)
    return Response(status_code=204)


@router.post("/automation/rules/{rule_id}/review")
async def review_rule(session: SessionDep, principal: AutoManager, rule_id: int) -> RuleOut:
    rule = await _rule(session, principal, rule_id)
    await do_mark_reviewed(session, actor=principal.actor, rule=rule)
    return RuleOut.of(rule)


@router.post("/automation/rules/{rule_id}/move")
async def move_rule(
    session: SessionDep, principal: AutoManager, rule_id: int, body: MoveIn
) -> dict[str, list[int]]:
    rule = await _rule(session, principal, rule_id)
    order = await do_move_rule(session, actor=principal.actor, rule=rule, offset=body.offset)
    return {"order": order}


@router.post("/automation/inboxes/{inbox_id}/try")
async def try_rules(
    session: SessionDep, runtime: RuntimeDep, principal: AutoReader, inbox_id: int, body: TryIn
) -> TryOut:
    """Which rule would answer this text (nothing is sent)."""
    inbox = await _inbox(session, principal, inbox_id)
    rules = await runtime.automation.ruleset(session, inbox_id)
    settings = await inbox_automation(session, inbox_id)
    hours = parse_hours(settings.timezone, settings.schedule, settings.holidays)
    open_now = is_open(hours, utcnow())
    started = time.perf_counter()
    facts = Facts.of(body.text, body.contact, inbox.channel_type, open_now)
    chosen = evaluate(rules, "message", facts, taken_over=False)
    elapsed = (time.perf_counter() - started) * 1e6
    return TryOut(
        rule_id=chosen[0].id if chosen else None,
        rule_name=chosen[0].name if chosen else None,
        captures=chosen[1] if chosen else {},
        open_now=open_now,
        evaluated_rules=len(rules.by_trigger["message"].rules)
        if "message" in rules.by_trigger
        else 0,
        eval_us=round(elapsed, 1),
    )


# ------------------------------------------------------------------ hours, greeting, away


async def _settings_out(session: AsyncSession, inbox_id: int) -> InboxAutomationOut:
    row = await inbox_automation(session, inbox_id)
    hours = parse_hours(row.timezone, row.schedule, row.holidays)
    now = utcnow()
    return InboxAutomationOut.of(row, is_open(hours, now), next_opening(hours, now))


@router.get("/automation/inboxes/{inbox_id}/settings")
async def get_inbox_settings(
    session: SessionDep, principal: AutoReader, inbox_id: int
) -> InboxAutomationOut:
    await _inbox(session, principal, inbox_id)
    return await _settings_out(session, inbox_id)


@router.put("/automation/inboxes/{inbox_id}/settings")
async def put_inbox_settings(
    session: SessionDep, principal: AutoManager, inbox_id: int, body: InboxAutomationIn
) -> InboxAutomationOut:
    await _inbox(session, principal, inbox_id)
    try:
        await do_set_inbox_automation(
            session,
            actor=principal.actor,
            inbox_id=inbox_id,
            data=body.model_dump(exclude_unset=True),
        )
    except AutomationInvalid as exc:
        raise _invalid(exc) from exc
    return await _settings_out(session, inbox_id)


# ------------------------------------------------------------------ FAQ bot


async def _faq(session: AsyncSession, principal: Principal, faq_id: int) -> FaqEntry:
    row = await session.get(FaqEntry, faq_id)
    if row is None or (row.inbox_id is not None and not principal.can_see_inbox(row.inbox_id)):
        raise ApiError(404, "not_found", "No such FAQ entry.")
    return row


async def faq_history(session: AsyncSession, faq_id: int, days: int = 90) -> list[FaqDayOut]:
    since = (utcnow() - timedelta(days=days)).date()
    rows = (
        await session.scalars(
            select(FaqDay).where(FaqDay.faq_id == faq_id, FaqDay.day >= since).order_by(FaqDay.day)
        )
    ).all()
    return [FaqDayOut.of(r) for r in rows]


async def faq_test(session: AsyncSession, runtime: Any, inbox_id: int, text: str) -> FaqTestOut:
    """What the worker would decide for this text (its cached index; nothing is sent)."""
    settings = await inbox_automation(session, inbox_id)
    index = await runtime.automation.faq_index(session, inbox_id)
    decision, matches = await asyncio.to_thread(
        lambda: (decide(index, text, settings.faq_threshold), best_matches(index, text, limit=5))
    )
    return FaqTestOut(
        faq_enabled=settings.faq_enabled,
        threshold=settings.faq_threshold,
        decision=decision.kind if len(index) else "none",
        matches=[
            FaqScore(
                faq_id=m.entry.id,
                question=m.entry.question,
                score=m.score,
                phrasing=m.phrasing,
                matcher=m.matcher,
            )
            for m in matches
        ],
    )


@router.get("/automation/faq")
async def list_faq(
    session: SessionDep, principal: AutoReader, inbox_id: int | None = None
) -> Page[FaqOut]:
    """Shared entries and those of the inboxes one may see; ``inbox_id``: that inbox's own
    and the shared ones (what the bot answers from there)."""
    query = _visible(select(FaqEntry), FaqEntry.inbox_id, principal, inbox_id, shared=True)
    if query is None:
        return Page(items=[])
    rows = (await session.scalars(query.order_by(FaqEntry.id))).all()
    return Page(items=[FaqOut.of(r) for r in rows])


@router.post("/automation/faq", status_code=201)
async def create_faq(session: SessionDep, principal: AutoManager, body: FaqIn) -> FaqOut:
    if body.inbox_id is not None:
        await _inbox(session, principal, body.inbox_id)
    try:
        row = await do_create_faq(
            session,
            actor=principal.actor,
            inbox_id=body.inbox_id,
            data=body.model_dump(exclude_unset=True, exclude={"inbox_id"}),
        )
    except AutomationInvalid as exc:
        raise _invalid(exc) from exc
    return FaqOut.of(row)


@router.post("/automation/faq/test")
async def test_faq(
    session: SessionDep, runtime: RuntimeDep, principal: AutoManager, body: FaqTestIn
) -> FaqTestOut:
    """Try a phrasing: the best entries with their scores and what the bot would do."""
    await _inbox(session, principal, body.inbox_id)
    return await faq_test(session, runtime, body.inbox_id, body.text)


@router.get("/automation/faq/{faq_id}")
async def get_faq(session: SessionDep, principal: AutoReader, faq_id: int) -> FaqDetailOut:
    row = await _faq(session, principal, faq_id)
    return FaqDetailOut(**FaqOut.of(row).model_dump(), history=await faq_history(session, row.id))


@router.patch("/automation/faq/{faq_id}")
async def update_faq(
    session: SessionDep, principal: AutoManager, faq_id: int, body: FaqIn
) -> FaqOut:
    row = await _faq(session, principal, faq_id)
    data = body.model_dump(exclude_unset=True)
    if data.get("inbox_id") is not None:
        await _inbox(session, principal, data["inbox_id"])
    try:
        await do_update_faq(session, actor=principal.actor, entry=row, data=data)
    except AutomationInvalid as exc:
        raise _invalid(exc) from exc
    await session.flush()
    return FaqOut.of(row)


@router.delete("/automation/faq/{faq_id}", status_code=204)
async def delete_faq(session: SessionDep, principal: AutoManager, faq_id: int) -> Response:
    row = await _faq(session, principal, faq_id)
    await do_delete_faq(session, actor=principal.actor, entry=row)
    return Response(status_code=204)


@router.post("/automation/faq/{faq_id}/reviewed")
async def review_faq(session: SessionDep, principal: AutoManager, faq_id: int) -> FaqOut:
    row = await _faq(session, principal, faq_id)
    await do_mark_faq_reviewed(session, actor=principal.actor, entry=row)
    return FaqOut.of(row)


# ------------------------------------------------------------------ guided flows


async def _flow(session: AsyncSession, principal: Principal, flow_id: int) -> Flow:
    flow = await session.get(Flow, flow_id)
    if flow is None or not principal.can_see_inbox(flow.inbox_id):
        raise ApiError(404, "not_found", "No such flow.")
    return flow


async def flow_detail(session: AsyncSession, flow: Flow) -> FlowDetailOut:
    versions = (
        await session.scalars(
            select(FlowVersion.version)
            .where(FlowVersion.flow_id == flow.id)
            .order_by(FlowVersion.version)
        )
    ).all()
    in_flow = await session.scalar(
        select(func.count())
        .select_from(FlowState)
        .where(FlowState.flow_id == flow.id, FlowState.expires_at > utcnow())
    )
    return FlowDetailOut(
        **FlowOut.of(flow).model_dump(), versions=list(versions), in_flow=in_flow or 0
    )


@router.get("/automation/flows")
async def list_flows(
    session: SessionDep, principal: AutoReader, inbox_id: int | None = None
) -> Page[FlowOut]:
    """The flows of the inboxes one may see (``inbox_id``: of that inbox)."""
    query = _visible(select(Flow), Flow.inbox_id, principal, inbox_id, shared=False)
    if query is None:
        return Page(items=[])
    rows = (await session.scalars(query.order_by(Flow.inbox_id, Flow.name))).all()
    return Page(items=[FlowOut.of(r) for r in rows])


@router.post("/automation/flows", status_code=201)
async def create_flow(session: SessionDep, principal: AutoManager, body: FlowIn) -> FlowOut:
    if body.inbox_id is None:
        raise ApiError(422, "invalid_flow", "inbox_id: the flow's inbox.", field="inbox_id")
    await _inbox(session, principal, body.inbox_id)
    try:
        flow = await do_create_flow(
            session,
            actor=principal.actor,
            inbox_id=body.inbox_id,
            data=body.model_dump(exclude_unset=True, exclude={"inbox_id"}),
        )
    except (RuleInvalid, AutomationInvalid) as exc:
        raise _invalid(exc) from exc
    return FlowOut.of(flow)


@router.get("/automation/flows/{flow_id}")
async def get_flow(session: SessionDep, principal: AutoReader, flow_id: int) -> FlowDetailOut:
    return await flow_detail(session, await _flow(session, principal, flow_id))


@router.patch("/automation/flows/{flow_id}")
async def update_flow(
    session: SessionDep, principal: AutoManager, flow_id: int, body: FlowIn
) -> FlowDetailOut:
    """A changed definition becomes the next version; ``enabled: false`` disables."""
    flow = await _flow(session, principal, flow_id)
    if body.inbox_id is not None and body.inbox_id != flow.inbox_id:
        raise ApiError(
            422, "invalid_flow", "inbox_id: a flow stays in its inbox.", field="inbox_id"
        )
    try:
        await do_update_flow(
            session,
            actor=principal.actor,
            flow=flow,
            data=body.model_dump(exclude_unset=True, exclude={"inbox_id"}),
        )
    except (RuleInvalid, AutomationInvalid) as exc:
        raise _invalid(exc) from exc
    await session.flush()
    return await flow_detail(session, flow)


@router.delete("/automation/flows/{flow_id}", status_code=204)
async def delete_flow(session: SessionDep, principal: AutoManager, flow_id: int) -> Response:
    flow = await _flow(session, principal, flow_id)
    await do_delete_flow(session, actor=principal.actor, flow=flow)
    return Response(status_code=204)


# ------------------------------------------------------------------ integrations


async def _integration(session: AsyncSession, integration_id: int) -> Integration:
    row = await session.get(Integration, integration_id)
    if row is None:
        raise ApiError(404, "not_found", "No such integration.")
    return row


@router.get("/automation/integrations")
async def list_integrations(session: SessionDep, principal: AutoManager) -> Page[IntegrationOut]:
    rows = (await session.scalars(select(Integration).order_by(Integration.name))).all()
    return Page(items=[IntegrationOut.of(r) for r in rows])


@router.post("/automation/integrations", status_code=201)
async def create_integration(
    session: SessionDep, principal: AutoManager, body: IntegrationIn
) -> IntegrationOut:
    try:
        row = await do_create_integration(
            session, actor=principal.actor, data=body.model_dump(exclude_unset=True)
        )
    except AutomationInvalid as exc:
        raise _invalid(exc) from exc
    return IntegrationOut.of(row)


@router.patch("/automation/integrations/{integration_id}")
async def update_integration(
    session: SessionDep, principal: AutoManager, integration_id: int, body: IntegrationIn
) -> IntegrationOut:
    row = await _integration(session, integration_id)
    try:
        await do_update_integration(
            session,
            actor=principal.actor,
            integration=row,
            data=body.model_dump(exclude_unset=True),
        )
    except AutomationInvalid as exc:
        raise _invalid(exc) from exc
    await session.flush()
    return IntegrationOut.of(row)


@router.delete("/automation/integrations/{integration_id}", status_code=204)
async def delete_integration(
    session: SessionDep, principal: AutoManager, integration_id: int
) -> Response:
    row = await _integration(session, integration_id)
    await do_delete_integration(session, actor=principal.actor, integration=row)
    return Response(status_code=204)


# ------------------------------------------------------------------ quick replies


async def _quick_reply(session: AsyncSession, principal: Principal, reply_id: int) -> QuickReply:
    row = await session.get(QuickReply, reply_id)
    if row is None or (row.inbox_id is not None and not principal.can_see_inbox(row.inbox_id)):
        raise ApiError(404, "not_found", "No such quick reply.")
    return row


@router.get("/quick-replies")
async def list_quick_replies(
    session: SessionDep,
    principal: AutoReader,
    q: Annotated[str, Query(max_length=100)] = "",
    inbox_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[QuickReplyOut]:
    """Shared quick replies and those of the inboxes one may see; ``q`` filters by shortcut
    prefix or title (the composer's ``/`` picker), most used first."""
    query = _visible(select(QuickReply), QuickReply.inbox_id, principal, inbox_id, shared=True)
    if query is None:
        return Page(items=[])
    needle = q.strip().lstrip("/").lower()
    if needle:
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(
            QuickReply.shortcut.like(f"{escaped}%", escape="\\")
            | QuickReply.title.ilike(f"%{escaped}%", escape="\\")
        )
    rows = (
        await session.scalars(
            query.order_by(QuickReply.usage_count.desc(), QuickReply.shortcut).limit(limit)
        )
    ).all()
    return Page(items=[QuickReplyOut.of(r) for r in rows])


@router.post("/quick-replies", status_code=201)
async def create_quick_reply(
    session: SessionDep, principal: AutoManager, body: QuickReplyIn
) -> QuickReplyOut:
    if body.inbox_id is not None:
        await _inbox(session, principal, body.inbox_id)
    try:
        row = await do_create_quick_reply(
            session,
            actor=principal.actor,
            inbox_id=body.inbox_id,
            data=body.model_dump(exclude_unset=True, exclude={"inbox_id"}),
        )
    except AutomationInvalid as exc:
        raise _invalid(exc) from exc
    return QuickReplyOut.of(row)


@router.patch("/quick-replies/{quick_reply_id}")
async def update_quick_reply(
    session: SessionDep, principal: AutoManager, quick_reply_id: int, body: QuickReplyIn
) -> QuickReplyOut:
    row = await _quick_reply(session, principal, quick_reply_id)
    try:
        await do_update_quick_reply(
            session,
            actor=principal.actor,
            reply=row,
            data=body.model_dump(exclude_unset=True, exclude={"inbox_id"}),
        )
    except AutomationInvalid as exc:
        raise _invalid(exc) from exc
    await session.flush()
    return QuickReplyOut.of(row)


@router.delete("/quick-replies/{quick_reply_id}", status_code=204)
async def delete_quick_reply(
    session: SessionDep, principal: AutoManager, quick_reply_id: int
) -> Response:
    row = await _quick_reply(session, principal, quick_reply_id)
    await do_delete_quick_reply(session, actor=principal.actor, reply=row)
    return Response(status_code=204)


@router.post("/quick-replies/{quick_reply_id}/render")
async def render_quick_reply(
    session: SessionDep, principal: AutoReader, quick_reply_id: int, body: RenderIn
) -> RenderOut:
    """The text with the conversation's contact and the agent filled in; counts one use."""
    row = await _quick_reply(session, principal, quick_reply_id)
    conversation = await _conversation(session, principal, body.conversation_id)
    if row.inbox_id is not None and row.inbox_id != conversation.inbox_id:
        raise ApiError(422, "wrong_inbox", "This quick reply belongs to another inbox.")
    contact = await session.get(Contact, conversation.contact_id)
    agent = await session.get(User, principal.user_id)
    attributes: dict[str, Any] = dict(contact.attributes or {}) if contact else {}
    context = {
        "contact": {
            **attributes,
            "name": contact.name if contact else "",
            "first_name": first_name(contact.name if contact else None),
            "phone": contact.phone_e164 if contact else "",
        },
        "agent": {
            "name": agent.name if agent else "",
            "first_name": first_name(agent.name if agent else None),
        },
    }
    await do_count_quick_reply_use(session, reply=row)
    return RenderOut(text=render(row.text, context), media_link=row.media_link)


# ------------------------------------------------------------------ message templates


def _client(runtime: Any, inbox: Inbox) -> WhatsAppClient:
    return WhatsAppClient(
        http=runtime.http,
        graph_url=inbox.graph_url,
        api_version=inbox.api_version,
        phone_number_id=inbox.external_account_id,
        access_token=inbox.access_token,
        business_account_id=inbox.business_account_id,
    )


def _template_out(row: MessageTemplate) -> TemplateOut:
    return TemplateOut.of(row, parameter_counts(row.components or []))


async def _template(
    session: AsyncSession, principal: Principal, template_id: int
) -> MessageTemplate:
    row = await session.get(MessageTemplate, template_id)
    if row is None or not principal.can_see_inbox(row.inbox_id):
        raise ApiError(404, "not_found", "No such template.")
    return row


@router.get("/message-templates")
async def list_templates(
    session: SessionDep,
    principal: AutoReader,
    inbox_id: int | None = None,
    status: str | None = None,
) -> Page[TemplateOut]:
    query = select(MessageTemplate).where(principal.inbox_filter(MessageTemplate.inbox_id))
    if inbox_id is not None:
        query = query.where(MessageTemplate.inbox_id == inbox_id)
    if status:
        query = query.where(MessageTemplate.status == status.upper())
    rows = (
        await session.scalars(query.order_by(MessageTemplate.name, MessageTemplate.language))
    ).all()
    return Page(items=[_template_out(r) for r in rows])


async def sync_templates(
    session: AsyncSession, runtime: Any, actor: Any, inbox: Inbox
) -> dict[str, int]:
    client = _client(runtime, inbox)
    # No database connection is held during the Graph API call (SQLite has only one).
    await session.commit()
    try:
        items = await client.list_templates()
    except ChannelSendError as exc:
        raise ApiError(502, "graph_error", f"WhatsApp answered: {exc.title}") from exc
    return await do_store_templates(session, actor=actor, inbox_id=inbox.id, items=items)


@router.post("/automation/inboxes/{inbox_id}/message-templates/sync")
async def sync_inbox_templates(
    session: SessionDep, runtime: RuntimeDep, principal: AutoManager, inbox_id: int
) -> SyncOut:
    inbox = await _inbox(session, principal, inbox_id)
    return SyncOut(**await sync_templates(session, runtime, principal.actor, inbox))


async def submit_template(
    session: AsyncSession, runtime: Any, actor: Any, inbox: Inbox, data: dict[str, Any]
) -> MessageTemplate:
    submission = template_submission(data)
    client = _client(runtime, inbox)
    await session.commit()
    try:
        answer = await client.create_template(submission)
    except ChannelSendError as exc:
        raise ApiError(422, "template_refused", f"WhatsApp refused it: {exc.title}") from exc
    await do_store_templates(
        session,
        actor=actor,
        inbox_id=inbox.id,
        items=await client.list_templates(),
    )
    row = await session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.inbox_id == inbox.id,
            MessageTemplate.name == submission["name"],
            MessageTemplate.language == submission["language"],
        )
    )
    if row is None:  # listed later by the provider: keep what it answered
        row = MessageTemplate(
            inbox_id=inbox.id,
            external_id=str(answer.get("id") or "") or None,
            name=submission["name"],
            language=submission["language"],
            category=str(answer.get("category") or submission["category"]),
            status=str(answer.get("status") or "PENDING"),
            components=submission["components"],
            synced_at=utcnow(),
        )
        session.add(row)
        await session.flush()
    return row


@router.post("/message-templates", status_code=201)
async def create_template(
    session: SessionDep, runtime: RuntimeDep, principal: AutoManager, body: TemplateIn
) -> TemplateOut:
    inbox = await _inbox(session, principal, body.inbox_id)
    try:
        row = await submit_template(session, runtime, principal.actor, inbox, body.model_dump())
    except AutomationInvalid as exc:
        raise _invalid(exc) from exc
    return _template_out(row)


@router.post("/message-templates/{template_id}/preview")
async def preview_template(
    session: SessionDep, principal: AutoReader, template_id: int, body: TemplateParams
) -> dict[str, Any]:
    row = await _template(session, principal, template_id)
    return preview(row.components or [], body.body, body.header)


@router.post("/message-templates/{template_id}/send", status_code=201)
async def send_template(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Sender,
    template_id: int,
    body: TemplateSendIn,
) -> dict[str, Any]:
    """Send an approved template with parameters (also outside the 24-hour window)."""
    row = await _template(session, principal, template_id)
    conversation = await _conversation(session, principal, body.conversation_id)
    if conversation.inbox_id != row.inbox_id:
        raise ApiError(422, "wrong_inbox", "This template belongs to another inbox.")
    if row.status != "APPROVED":
        raise ApiError(422, "template_not_approved", f"The template is {row.status.lower()}.")
    counts = parameter_counts(row.components or [])
    if len(body.body) != counts["body"] or len(body.header) != counts["header"]:
        raise ApiError(
            422,
            "template_parameters",
            f"The template needs {counts['body']} body and {counts['header']} header parameter(s).",
        )
    shown = preview(row.components or [], body.body, body.header)
    try:
        message, _ = await do_send_message(
            session,
            actor=principal.actor,
            conversation=conversation,
            request=SendRequest(
                type="template",
                text=shown.get("body"),
                content={
                    "name": row.name,
                    "language": row.language,
                    "components": send_components(row.components or [], body.body, body.header),
                },
            ),
            service_window_hours=runtime.settings.service_window_hours,
        )
    except SendRefused as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    return {"id": message.id, "status": message.status, "preview": shown}
