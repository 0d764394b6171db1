"""/api/v1/routing: my availability, the live queue, reassignment, agents' capacity and
languages, per-inbox and organisation settings, routing rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from sqlalchemy import and_, func, or_, select

from wadesk.accounts.access import Principal
from wadesk.accounts.models import InboxMember
from wadesk.conversations.actions import SendRefused
from wadesk.conversations.models import Conversation
from wadesk.conversations.queries import get_conversation
from wadesk.deps import SessionDep, require_permission
from wadesk.errors import ApiError
from wadesk.inboxes.models import Inbox
from wadesk.routing import actions, queries
from wadesk.routing import language as lang
from wadesk.routing.models import ConversationRouting, QueueEntry, RoutingRule
from wadesk.routing.rule_actions import do_create_rule, do_delete_rule, do_update_rule
from wadesk.routing.rules import Context, RuleView, evaluate
from wadesk.routing.schemas import (
    AgentOut,
    AgentUpdate,
    AssignIn,
    AvailabilityIn,
    ConfigIO,
    ConversationRoutingOut,
    InboxRoutingIO,
    MyState,
    QueueOut,
    RuleIn,
    RuleList,
    RuleOut,
    RulePatch,
    RuleTestIn,
    RuleTestOut,
)

router = APIRouter(prefix="/routing", tags=["routing"])
Self = Annotated[Principal, require_permission("routing.self")]
QueueReader = Annotated[Principal, require_permission("routing.queue")]
Supervisor = Annotated[Principal, require_permission("routing.supervise")]
Manager = Annotated[Principal, require_permission("routing.manage")]


def _error(exc: actions.RoutingError | SendRefused) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc))


async def _my_state(session: SessionDep, user_id: int) -> MyState:
    rows = await queries.agent_rows(session, [user_id])
    state = await actions.get_state(session, user_id)
    row = rows[0] if rows else None
    return MyState(
        user_id=user_id,
        availability=state.availability,
        load=row.load if row else 0,
        capacity=row.capacity if row else 0,
        languages=list(state.languages or []),
        last_assigned_at=state.last_assigned_at,
        last_seen_at=state.last_seen_at,
    )


@router.get("/me", response_model=MyState)
async def me(session: SessionDep, principal: Self) -> MyState:
    """My availability, load and capacity."""
    return await _my_state(session, principal.user_id)


@router.put("/me", response_model=MyState)
async def set_me(session: SessionDep, principal: Self, body: AvailabilityIn) -> MyState:
    """Set my availability: online (receives new conversations), busy, away, offline."""
    try:
        await actions.do_set_availability(
            session,
            actor=principal.actor,
            user_id=principal.user_id,
            availability=body.availability,
        )
    except actions.RoutingError as exc:
        raise _error(exc) from exc
    return await _my_state(session, principal.user_id)


@router.get("/queue", response_model=QueueOut)
async def queue(session: SessionDep, principal: QueueReader) -> QueueOut:
    """The live queue of my inboxes: waiting count, longest wait, each waiting conversation
    (priority first, then waiting time) and each agent's load and status."""
    overview = await queries.queue_overview(session, principal)
    return QueueOut.model_validate(overview)


@router.get("/agents", response_model=list[AgentOut])
async def agents(session: SessionDep, principal: QueueReader) -> list[AgentOut]:
    ids = await queries.visible_agent_ids(session, principal)
    return [AgentOut.model_validate(r) for r in await queries.agent_rows(session, ids)]


@router.patch("/agents/{user_id}", response_model=AgentOut)
async def update_agent(
    session: SessionDep, principal: Supervisor, user_id: int, body: AgentUpdate
) -> AgentOut:
    """A person's capacity override (or clear_capacity) and language skills."""
    if user_id not in await queries.visible_agent_ids(session, principal):
        raise ApiError(404, "not_found", "No such person in your inboxes or teams.")
    try:
        await actions.do_update_agent(
            session,
            actor=principal.actor,
            user_id=user_id,
            capacity=body.capacity,
            clear_capacity=body.clear_capacity,
            languages=body.languages,
        )
    except actions.RoutingError as exc:
        raise _error(exc) from exc
    return AgentOut.model_validate((await queries.agent_rows(session, [user_id]))[0])


async def _visible_conversation(
    session: SessionDep, principal: Principal, conversation_id: int
) -> Conversation:
    conversation = await get_conversation(session, principal, conversation_id, for_update=True)
    if conversation is None:
        raise ApiError(404, "not_found", "No such conversation.")
    return conversation


@router.get("/conversations/{conversation_id}", response_model=ConversationRoutingOut)
async def conversation_routing(
    session: SessionDep, principal: QueueReader, conversation_id: int
) -> ConversationRoutingOut:
    """What routing decided: team, language, priority tags, rules, first-response target,
    and the position in the queue when waiting."""
    conversation = await get_conversation(session, principal, conversation_id)
    if conversation is None:
        raise ApiError(404, "not_found", "No such conversation.")
    facts = await session.get(ConversationRouting, conversation_id)
    entry = await session.get(QueueEntry, conversation_id)
    position = None
    if entry is not None:
        ahead = await session.scalar(
            select(func.count()).where(
                or_(
                    QueueEntry.rank > entry.rank,
                    and_(
                        QueueEntry.rank == entry.rank,
                        or_(
                            QueueEntry.enqueued_at < entry.enqueued_at,
                            and_(
                                QueueEntry.enqueued_at == entry.enqueued_at,
                                QueueEntry.conversation_id < entry.conversation_id,
                            ),
                        ),
                    ),
                )
            )
        )
        position = int(ahead or 0) + 1
    return ConversationRoutingOut(
        conversation_id=conversation_id,
        assignee_id=conversation.assignee_id,
        queued=entry is not None,
        queue_position=position,
        team_id=facts.team_id if facts else None,
        language=facts.language if facts else None,
        tags=list(facts.tags or []) if facts else [],
        matched_rules=list(facts.matched_rules or []) if facts else [],
        first_response_due_at=facts.first_response_due_at if facts else None,
        first_response_at=facts.first_response_at if facts else None,
        breached_at=facts.breached_at if facts else None,
    )


@router.post("/conversations/{conversation_id}/assign", response_model=ConversationRoutingOut)
async def assign(
    session: SessionDep, principal: Supervisor, conversation_id: int, body: AssignIn
) -> ConversationRoutingOut:
    """Reassign by hand (user_id null: back to the queue). Beyond the person's capacity only
    with ``force: true``."""
    conversation = await _visible_conversation(session, principal, conversation_id)
    if body.user_id is not None and principal.inbox_ids is not None:
        member = await session.get(InboxMember, (conversation.inbox_id, body.user_id))
        if member is None:
            raise ApiError(422, "not_inbox_member", "This person is not in the inbox.")
    try:
        await actions.do_reassign(
            session,
            actor=principal.actor,
            conversation=conversation,
            user_id=body.user_id,
            force=body.force,
        )
    except (actions.RoutingError, SendRefused) as exc:
        raise _error(exc) from exc
    return await conversation_routing(session, principal, conversation_id)


async def _inbox(session: SessionDep, inbox_id: int) -> Inbox:
    inbox = await session.get(Inbox, inbox_id)
    if inbox is None:
        raise ApiError(404, "not_found", "No such inbox.")
    return inbox


@router.get("/inboxes/{inbox_id}", response_model=InboxRoutingIO)
async def inbox_settings(session: SessionDep, _p: Manager, inbox_id: int) -> InboxRoutingIO:
    await _inbox(session, inbox_id)
    return InboxRoutingIO.model_validate(await actions.inbox_settings(session, inbox_id))


@router.put("/inboxes/{inbox_id}", response_model=InboxRoutingIO)
async def set_inbox_settings(
    session: SessionDep, principal: Manager, inbox_id: int, body: InboxRoutingIO
) -> InboxRoutingIO:
    """Strategy, capacity (for this inbox's conversations), stickiness in days (0: off),
    and what happens to unanswered conversations when their agent goes offline."""
    await _inbox(session, inbox_id)
    try:
        row = await actions.do_update_inbox_settings(
            session, actor=principal.actor, inbox_id=inbox_id, values=body.model_dump()
        )
    except actions.RoutingError as exc:
        raise _error(exc) from exc
    return InboxRoutingIO.model_validate(row)


@router.get("/config", response_model=ConfigIO)
async def get_config(session: SessionDep, _p: Manager) -> ConfigIO:
    return ConfigIO.model_validate(await actions.load_config(session))


@router.put("/config", response_model=ConfigIO)
async def set_config(session: SessionDep, principal: Manager, body: ConfigIO) -> ConfigIO:
    """Default capacity, detected languages, priority-rule thresholds, first-response target."""
    try:
        row = await actions.do_update_config(
            session, actor=principal.actor, values=body.model_dump()
        )
    except actions.RoutingError as exc:
        raise _error(exc) from exc
    return ConfigIO.model_validate(row)


@router.get("/rules", response_model=RuleList)
async def rules(session: SessionDep, _p: Manager) -> RuleList:
    """In evaluation order, with how often each matched."""
    rows = (
        await session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
    ).all()
    return RuleList(items=[RuleOut.model_validate(r) for r in rows])


@router.post("/rules", response_model=RuleOut, status_code=201)
async def create_rule(session: SessionDep, principal: Manager, body: RuleIn) -> RuleOut:
    try:
        rule = await do_create_rule(session, actor=principal.actor, values=body.model_dump())
    except actions.RoutingError as exc:
        raise _error(exc) from exc
    return RuleOut.model_validate(rule)


async def _rule(session: SessionDep, rule_id: int) -> RoutingRule:
    rule = await session.get(RoutingRule, rule_id)
    if rule is None:
        raise ApiError(404, "not_found", "No such rule.")
    return rule


@router.patch("/rules/{rule_id}", response_model=RuleOut)
async def update_rule(
    session: SessionDep, principal: Manager, rule_id: int, body: RulePatch
) -> RuleOut:
    rule = await _rule(session, rule_id)
    values = body.model_dump(exclude_unset=True)
    try:
        await do_update_rule(session, actor=principal.actor, rule=rule, values=values)
    except actions.RoutingError as exc:
        raise _error(exc) from exc
    return RuleOut.model_validate(rule)


@router.delete("/rules/{rule_id}", status_code=204)
async def delete_rule(session: SessionDep, principal: Manager, rule_id: int) -> Response:
    await do_delete_rule(session, actor=principal.actor, rule=await _rule(session, rule_id))
    return Response(status_code=204)


@router.post("/rules/test", response_model=RuleTestOut)
async def test_rules(session: SessionDep, _p: Manager, body: RuleTestIn) -> RuleTestOut:
    """Which rules a message would match (nothing is changed or counted)."""
    config = await actions.load_config(session)
    language = lang.detect(body.text, config.languages) if config.languages else None
    rows = (
        await session.scalars(
            select(RoutingRule)
            .where(RoutingRule.enabled.is_(True))
            .order_by(RoutingRule.position, RoutingRule.id)
        )
    ).all()
    views = [RuleView(r.id, r.conditions or {}, r.actions or {}, r.stop) for r in rows]
    outcome = evaluate(views, Context(body.text, body.inbox_id, body.attributes, language))
    return RuleTestOut(
        language=language,
        matched=outcome.matched,
        team_id=outcome.team_id,
        priority=outcome.priority,
        labels=outcome.labels,
    )
