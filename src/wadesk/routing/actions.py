"""Routing state changes: new conversations, the waiting queue, assignments, availability.

How capacity is kept (docs/decisions/0040-routing-capacity.md): an agent's load is never a
stored counter. Every assignment made by routing happens while the assigning transaction
holds the row locks of the online agents' ``routing_agents`` rows (``SELECT ... FOR UPDATE``,
in user id order); the loads are then *counted* from ``conversations`` by a statement that
starts after the locks are granted, so on PostgreSQL (READ COMMITTED) it sees every
assignment committed by the previous holder. Two processes cannot both see a free slot. A
conversation is taken only if its row can be locked (``FOR UPDATE SKIP LOCKED``) and it is
still unassigned and unresolved, so one conversation is never assigned twice. SQLite has one
writer at a time (``BEGIN IMMEDIATE``), which gives the same guarantees.

Lock order, to avoid deadlocks: the audit chain's advisory lock first (every routing
transaction writes audit rows), then the agent rows, then conversation rows (skip-locked:
never waited for).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, and_, bindparam, delete, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.models import InboxMember, User
from wadesk.audit.actions import Actor, record_many
from wadesk.bulk import NO_TARGET, bulk_insert
from wadesk.contacts.models import Contact
from wadesk.conversations.models import Conversation, Message
from wadesk.db import insert_for, queue_event, utcnow
from wadesk.routing import language as lang
from wadesk.routing.models import (
    AVAILABILITY,
    OFFLINE_BEHAVIOURS,
    STRATEGIES,
    AgentState,
    ConversationRouting,
    InboxRouting,
    QueueEntry,
    RoutingConfig,
    RoutingRule,
)
from wadesk.routing.rules import (
    PRIORITY_RANK,
    TAG_PRIORITY,
    Context,
    RuleView,
    evaluate,
    higher_priority,
    priority_tags,
    uses_hours,
)
from wadesk.teams.models import Team, TeamMember

if TYPE_CHECKING:
    from wadesk.conversations.hooks import InboundBatch

SYSTEM = Actor.system("routing")
BUSY = "wadesk_routing_busy"
QUEUE_PAGE = 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An internal event: a drain was skipped because another was running; drain after commit.
DRAIN_LATER = "routing.drain_later"
# pg_advisory_xact_lock key serialising routing's changes (see lock_routing).
ROUTING_LOCK = int.from_bytes(b"wdroute!", "big") & 0x7FFF_FFFF_FFFF_FFFF


class RoutingError(ValueError):
    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


# ------------------------------------------------------------------ helpers


def _pg(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


@contextlib.asynccontextmanager
async def busy(session: AsyncSession) -> AsyncIterator[None]:
    """Routing's own conversation changes: its after_conversation_change handler stays out."""
    before = session.info.get(BUSY, False)
    session.info[BUSY] = True
    try:
        yield
    finally:
        session.info[BUSY] = before


def default_config() -> RoutingConfig:
    return RoutingConfig(
        id=1,
        default_capacity=5,
        languages=[],
        returns_threshold=2,
        spend_threshold=1000.0,
        frequent_threshold=3,
        first_response_seconds=60,
    )


async def load_config(session: AsyncSession) -> RoutingConfig:
    return await session.get(RoutingConfig, 1) or default_config()


def default_inbox_settings(inbox_id: int) -> InboxRouting:
    return InboxRouting(
        inbox_id=inbox_id,
        enabled=True,
        strategy="least_loaded",
        capacity=None,
        sticky_days=0,
        offline_behaviour="keep",
    )


async def inbox_settings(session: AsyncSession, inbox_id: int) -> InboxRouting:
    return await session.get(InboxRouting, inbox_id) or default_inbox_settings(inbox_id)


async def lock_routing(session: AsyncSession, *, wait: bool = True) -> bool:
    """Serialise routing's changes (drains, availability, capacities, hand assignments) until
    this transaction ends. A drain locks every online agent's row; a change to one agent that
    then drains would otherwise lock in the other order and deadlock with it. With ``wait``
    False: take it only if it is free (returns whether it was taken)."""
    if session.bind.dialect.name != "postgresql":
        return True
    if wait:
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROUTING_LOCK})
        return True
    taken = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ROUTING_LOCK}
    )
    return bool(taken)


# ------------------------------------------------------------------ the queue


async def enqueue(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """rows: conversation_id, inbox_id, team_id, language, sticky_user_id, rank, enqueued_at."""
    if not rows:
        return
    table = cast(Table, QueueEntry.__table__)
    await session.execute(
        *bulk_insert(session.bind.dialect.name, table, rows, skip_conflicts=NO_TARGET)
    )


async def _queue_row_for(
    session: AsyncSession, conversation: Conversation, *, enqueued_at: datetime
) -> dict[str, Any]:
    facts = await session.get(ConversationRouting, conversation.id)
    return {
        "conversation_id": conversation.id,
        "inbox_id": conversation.inbox_id,
        "team_id": facts.team_id if facts else None,
        "language": facts.language if facts else None,
        "sticky_user_id": None,
        "rank": PRIORITY_RANK.get(conversation.priority, 0),
        "enqueued_at": enqueued_at,
    }


@dataclass
class Agent:
    user_id: int
    capacity: int | None
    languages: frozenset[str]
    last_assigned_at: datetime
    load: int
    inboxes: set[int] = field(default_factory=set)
    assigned_now: int = 0


@dataclass
class Pool:
    """The online agents, locked, with their loads counted after the lock."""

    agents: dict[int, Agent]
    inbox_members: dict[int, set[int]]
    team_members: dict[int, set[int]]
    settings: dict[int, InboxRouting]
    team_strategy: dict[int, str]
    default_capacity: int

    def capacity(self, agent: Agent, inbox_id: int) -> int:
        if agent.capacity is not None:
            return agent.capacity
        inbox = self.settings.get(inbox_id)
        if inbox is not None and inbox.capacity is not None:
            return inbox.capacity
        return self.default_capacity

    def has_room_somewhere(self, agent: Agent) -> bool:
        return any(agent.load < self.capacity(agent, i) for i in agent.inboxes)

    def pick(self, entry: QueueEntry) -> Agent | None:
        members = self.inbox_members.get(entry.inbox_id, set())
        if entry.team_id is not None:
            members = members & self.team_members.get(entry.team_id, set())
        room = [
            self.agents[u]
            for u in members
            if self.agents[u].load < self.capacity(self.agents[u], entry.inbox_id)
        ]
        if not room:
            return None
        if entry.sticky_user_id is not None:
            for agent in room:
                if agent.user_id == entry.sticky_user_id:
                    return agent
        if entry.language:
            speakers = [a for a in room if entry.language in a.languages]
            if speakers:
                room = speakers
        strategy = self.team_strategy.get(entry.team_id or 0) or (
            self.settings[entry.inbox_id].strategy
            if entry.inbox_id in self.settings
            else "least_loaded"
        )
        if strategy == "round_robin":
            # Rotation: the agent with room who has waited longest since their last assignment.
            return min(room, key=lambda a: (a.last_assigned_at, a.user_id))
        return min(room, key=lambda a: (a.load, a.last_assigned_at, a.user_id))


async def _lock_pool(session: AsyncSession) -> Pool | None:
    query = (
        select(AgentState)
        .join(User, User.id == AgentState.user_id)
        .where(AgentState.availability == "online", User.is_active.is_(True))
        .order_by(AgentState.user_id)
        .with_for_update(of=AgentState)
    )
    states = list((await session.scalars(query)).all())
    if not states:
        return None
    ids = [s.user_id for s in states]
    # Counted after the locks were granted: sees every assignment committed before.
    loads = dict(
        (
            await session.execute(
                select(Conversation.assignee_id, func.count())
                .where(Conversation.assignee_id.in_(ids), Conversation.status != "resolved")
                .group_by(Conversation.assignee_id)
            )
        )
        .tuples()
        .all()
    )
    agents = {
        s.user_id: Agent(
            s.user_id,
            s.capacity,
            frozenset(s.languages or []),
            s.last_assigned_at or EPOCH,
            int(loads.get(s.user_id, 0)),
        )
        for s in states
    }
    inbox_members: dict[int, set[int]] = defaultdict(set)
    for inbox_id, user_id in (
        await session.execute(
            select(InboxMember.inbox_id, InboxMember.user_id).where(InboxMember.user_id.in_(ids))
        )
    ).tuples():
        inbox_members[inbox_id].add(user_id)
        agents[user_id].inboxes.add(inbox_id)
    team_members: dict[int, set[int]] = defaultdict(set)
    for team_id, user_id in (
        await session.execute(
            select(TeamMember.team_id, TeamMember.user_id).where(TeamMember.user_id.in_(ids))
        )
    ).tuples():
        team_members[team_id].add(user_id)
    settings = {s.inbox_id: s for s in (await session.scalars(select(InboxRouting))).all()}
    team_strategy = {
        team_id: strategy
        for team_id, strategy in (
            await session.execute(
                select(Team.id, Team.routing_strategy).where(Team.routing_strategy.is_not(None))
            )
        ).tuples()
        if strategy
    }
    config = await load_config(session)
    return Pool(
        agents,
        inbox_members,
        team_members,
        settings,
        team_strategy,
        config.default_capacity,
    )


@dataclass(frozen=True, slots=True)
class Assignment:
    conversation_id: int
    inbox_id: int
    user_id: int
    waited_s: float


async def drain(
    session: AsyncSession, *, reason: str = "slot_freed", wait: bool = True
) -> list[Assignment]:
    """Assign the head of the queue to agents with room, until nobody has room or the queue
    is empty. Safe to call from any number of processes at once.

    With ``wait`` False (a resolve, a new conversation), a drain already running elsewhere is
    not waited for: this transaction queues ``routing.drain_later`` instead, and the runtime's
    drainer drains once it has committed. Under a burst one drainer round assigns every slot
    freed meanwhile, instead of each request holding routing's lock in turn until its commit
    (bench/routing.py: resolves queued for seconds behind one another)."""
    if (await session.scalar(select(QueueEntry.conversation_id).limit(1))) is None:
        return []
    if (
        await session.scalar(
            select(AgentState.user_id).where(AgentState.availability == "online").limit(1)
        )
    ) is None:
        return []
    if not await lock_routing(session, wait=wait):
        queue_event(session, DRAIN_LATER, {})
        return []
    pool = await _lock_pool(session)
    if pool is None:
        return []
    with_room = {u for u, a in pool.agents.items() if pool.has_room_somewhere(a)}
    if not with_room:
        return []
    now = utcnow()
    done: list[Assignment] = []
    stale: list[int] = []
    after: tuple[int, datetime, int] | None = None
    while with_room:
        query = select(QueueEntry).order_by(
            QueueEntry.rank.desc(), QueueEntry.enqueued_at, QueueEntry.conversation_id
        )
        if after is not None:
            rank, at, cid = after
            query = query.where(
                or_(
                    QueueEntry.rank < rank,
                    and_(
                        QueueEntry.rank == rank,
                        or_(
                            QueueEntry.enqueued_at > at,
                            and_(QueueEntry.enqueued_at == at, QueueEntry.conversation_id > cid),
                        ),
                    ),
                )
            )
        entries = list((await session.scalars(query.limit(QUEUE_PAGE))).all())
        if not entries:
            break
        after = (entries[-1].rank, entries[-1].enqueued_at, entries[-1].conversation_id)
        picks: list[tuple[QueueEntry, Agent]] = []
        for entry in entries:
            agent = pool.pick(entry)
            if agent is None:
                continue
            agent.load += 1
            picks.append((entry, agent))
            if not pool.has_room_somewhere(agent):
                with_room.discard(agent.user_id)
                if not with_room:
                    break
        if not picks:
            if len(entries) < QUEUE_PAGE:
                break
            continue
        free = await _lock_unassigned(session, [e.conversation_id for e, _ in picks])
        for entry, agent in picks:
            state = free.get(entry.conversation_id)
            if state is True:
                agent.assigned_now += 1
                agent.last_assigned_at = now
                done.append(
                    Assignment(
                        entry.conversation_id,
                        entry.inbox_id,
                        agent.user_id,
                        (now - entry.enqueued_at).total_seconds(),
                    )
                )
            else:
                agent.load -= 1  # not taken: locked elsewhere, or no longer waiting
                if pool.has_room_somewhere(agent):
                    with_room.add(agent.user_id)
                if state is False:
                    stale.append(entry.conversation_id)
        # the session would otherwise keep the QueueEntry objects we are about to delete
        for entry, _agent in picks:
            session.expunge(entry)
        if len(entries) < QUEUE_PAGE:
            break
    if stale:
        await session.execute(delete(QueueEntry).where(QueueEntry.conversation_id.in_(stale)))
    await _apply(session, done, pool, now, reason=reason)
    return done


async def _lock_unassigned(session: AsyncSession, ids: list[int]) -> dict[int, bool]:
    """conversation id -> True (locked by us, still waiting) or False (assigned or resolved
    meanwhile); absent: locked by another transaction (left in the queue)."""
    query = select(Conversation.id, Conversation.assignee_id, Conversation.status).where(
        Conversation.id.in_(ids)
    )
    if _pg(session):
        query = query.with_for_update(skip_locked=True)
    rows = (await session.execute(query)).tuples().all()
    return {cid: (assignee is None and status != "resolved") for cid, assignee, status in rows}


async def _apply(
    session: AsyncSession, done: list[Assignment], pool: Pool, now: datetime, *, reason: str
) -> None:
    if not done:
        return
    from wadesk.conversations.hooks import after_conversation_change

    table = cast(Table, Conversation.__table__)
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("cid"))
        .values(assignee_id=bindparam("uid"), updated_at=now),
        [{"cid": a.conversation_id, "uid": a.user_id} for a in done],
    )
    ids = [a.conversation_id for a in done]
    await session.execute(delete(QueueEntry).where(QueueEntry.conversation_id.in_(ids)))
    agents = cast(Table, AgentState.__table__)
    await session.execute(
        update(agents)
        .where(agents.c.user_id == bindparam("u"))
        .values(
            last_assigned_at=now,
            assigned_total=agents.c.assigned_total + bindparam("n"),
        ),
        [{"u": a.user_id, "n": a.assigned_now} for a in pool.agents.values() if a.assigned_now > 0],
    )
    await record_many(
        session,
        SYSTEM,
        [
            (
                "routing.assign",
                "conversation",
                a.conversation_id,
                {
                    "conversation_id": a.conversation_id,
                    "assignee_id": a.user_id,
                    "reason": reason,
                    "waited_s": round(a.waited_s, 3),
                },
            )
            for a in done
        ],
    )
    for a in done:
        queue_event(
            session,
            "conversation.updated",
            {
                "conversation_id": a.conversation_id,
                "inbox_id": a.inbox_id,
                "changes": ["assignee_id"],
            },
        )
    queue_event(
        session,
        "routing.queue_changed",
        {"inbox_ids": sorted({a.inbox_id for a in done}), "assigned": len(done)},
    )
    # Other domains (automation) hear the assignment like any other; routing's own handler
    # stays out (it would only drain again).
    conversations = (
        await session.scalars(
            select(Conversation)
            .where(Conversation.id.in_(ids))
            .execution_options(populate_existing=True)
        )
    ).all()
    async with busy(session):
        for conversation in conversations:
            await after_conversation_change(
                session, conversation, {"assignee_id": (None, conversation.assignee_id)}
            )


# ------------------------------------------------------------------ new conversations


async def _hours_checker(session: AsyncSession, inbox_id: int) -> Any:
    """A callable answering whether the inbox is within business hours now (None: unknown).

    Business hours belong to automation (``wadesk.automation.hours``); without that module or
    without hours set for the inbox, a business-hours condition never matches."""
    try:
        from wadesk.automation.hours import is_open, parse_hours
        from wadesk.automation.models import InboxAutomation
    except ImportError:  # pragma: no cover - automation not installed
        return lambda: None
    row = await session.get(InboxAutomation, inbox_id)
    if row is None or not row.schedule:
        return lambda: None
    try:
        hours = parse_hours(row.timezone, row.schedule, row.holidays)
    except ValueError:
        return lambda: None
    answer = is_open(hours, utcnow())
    return lambda: answer


async def _rules(session: AsyncSession) -> list[RuleView]:
    rows = (
        await session.execute(
            select(RoutingRule.id, RoutingRule.conditions, RoutingRule.actions, RoutingRule.stop)
            .where(RoutingRule.enabled.is_(True))
            .order_by(RoutingRule.position, RoutingRule.id)
        )
    ).tuples()
    return [RuleView(i, c or {}, a or {}, bool(s)) for i, c, a, s in rows]


async def _conversations_30d(session: AsyncSession, contact_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    since = utcnow() - timedelta(days=30)
    return dict(
        (
            await session.execute(
                select(Conversation.contact_id, func.count())
                .where(Conversation.contact_id.in_(ids), Conversation.created_at >= since)
                .group_by(Conversation.contact_id)
            )
        )
        .tuples()
        .all()
    )


async def _sticky_agents(
    session: AsyncSession, inbox_id: int, contacts: dict[int, int], days: int
) -> dict[int, int]:
    """conversation id -> the agent who last helped its contact in this inbox within
    ``days`` days (from the contact's previous conversations)."""
    if days <= 0 or not contacts:
        return {}
    since = utcnow() - timedelta(days=days)
    rows = (
        await session.execute(
            select(Conversation.contact_id, Conversation.assignee_id)
            .where(
                Conversation.inbox_id == inbox_id,
                Conversation.contact_id.in_(sorted(set(contacts.values()))),
                Conversation.id.not_in(sorted(contacts)),
                Conversation.assignee_id.is_not(None),
                Conversation.last_activity_at >= since,
            )
            .order_by(Conversation.contact_id, Conversation.last_activity_at, Conversation.id)
        )
    ).tuples()
    last: dict[int, int] = {}
    for contact_id, assignee_id in rows:
        if assignee_id is not None:
            last[contact_id] = assignee_id  # ordered: the latest wins
    return {cid: last[contact] for cid, contact in contacts.items() if contact in last}


async def route_new_conversations(session: AsyncSession, batch: InboundBatch) -> None:
    """Called (hooks.after_inbound) in the ingest transaction for conversations the batch
    opened: priority rules, routing rules, language; then queued and the queue drained."""
    opened = sorted(batch.opened_conversation_ids)
    if not opened:
        return
    settings = await inbox_settings(session, batch.inbox_id)
    if not settings.enabled:
        return
    config = await load_config(session)
    now = utcnow()
    convs = (
        await session.execute(
            select(
                Conversation.id,
                Conversation.contact_id,
                Conversation.priority,
                Conversation.created_at,
            ).where(Conversation.id.in_(opened))
        )
    ).all()
    first_text: dict[int, str | None] = {}
    for ref in sorted(batch.messages, key=lambda m: m.message_id):
        if ref.conversation_id in batch.opened_conversation_ids:
            first_text.setdefault(ref.conversation_id, ref.text)
    contact_of = {c.id: c.contact_id for c in convs}
    # A contact created by this very batch has no attributes and no other conversation.
    known = {
        conv: contact
        for conv, contact in contact_of.items()
        if contact not in batch.new_contact_ids
    }
    attributes: dict[int, dict[str, Any]] = {}
    if known:
        attributes = dict(
            (
                await session.execute(
                    select(Contact.id, Contact.attributes).where(
                        Contact.id.in_(sorted(set(known.values())))
                    )
                )
            )
            .tuples()
            .all()
        )
    counts = await _conversations_30d(session, known.values())
    rules = await _rules(session)
    detect = bool(config.languages)
    hours = await _hours_checker(session, batch.inbox_id) if uses_hours(rules) else lambda: None
    sticky = await _sticky_agents(session, batch.inbox_id, known, settings.sticky_days)
    facts: list[dict[str, Any]] = []
    queue: list[dict[str, Any]] = []
    matched_count: dict[int, int] = defaultdict(int)
    changes: dict[int, tuple[str, list[str]]] = {}
    for conv in sorted(convs, key=lambda c: c.id):
        attrs = attributes.get(conv.contact_id) or {}
        text = first_text.get(conv.id)
        language = lang.detect(text, config.languages) if detect else None
        tags = priority_tags(
            attrs,
            counts.get(conv.contact_id, 1),
            returns_threshold=config.returns_threshold,
            spend_threshold=config.spend_threshold,
            frequent_threshold=config.frequent_threshold,
        )
        outcome = (
            evaluate(rules, Context(text, batch.inbox_id, attrs, language, hours))
            if rules
            else None
        )
        for rule_id in outcome.matched if outcome else []:
            matched_count[rule_id] += 1
        priority = higher_priority(
            conv.priority,
            *(TAG_PRIORITY[t] for t in tags),
            outcome.priority if outcome else None,
        )
        labels = [*tags, *(outcome.labels if outcome else [])]
        if priority != conv.priority or labels:
            changes[conv.id] = (priority, labels)
        team_id = outcome.team_id if outcome else None
        due = (
            conv.created_at + timedelta(seconds=config.first_response_seconds)
            if tags and config.first_response_seconds > 0
            else None
        )
        facts.append(
            {
                "conversation_id": conv.id,
                "team_id": team_id,
                "language": language,
                "tags": tags,
                "matched_rules": outcome.matched if outcome else [],
                "evaluated_at": now,
                "first_response_due_at": due,
                "first_response_at": None,
                "breached_at": None,
            }
        )
        queue.append(
            {
                "conversation_id": conv.id,
                "inbox_id": batch.inbox_id,
                "team_id": team_id,
                "language": language,
                "sticky_user_id": sticky.get(conv.id),
                "rank": PRIORITY_RANK.get(priority, 0),
                "enqueued_at": conv.created_at,
            }
        )
    if matched_count:
        rules_table = cast(Table, RoutingRule.__table__)
        await session.execute(
            update(rules_table)
            .where(rules_table.c.id == bindparam("rid"))
            .values(match_count=rules_table.c.match_count + bindparam("n"), last_matched_at=now),
            [{"rid": rid, "n": n} for rid, n in sorted(matched_count.items())],
        )
    await session.execute(
        *bulk_insert(
            session.bind.dialect.name,
            cast(Table, ConversationRouting.__table__),
            facts,
            skip_conflicts=NO_TARGET,
        )
    )
    if changes:
        await _apply_priority_and_labels(session, changes)
    await enqueue(session, queue)
    queue_event(
        session, "routing.queue_changed", {"inbox_ids": [batch.inbox_id], "queued": len(queue)}
    )
    await drain(session, reason="new_conversation", wait=False)


async def _apply_priority_and_labels(
    session: AsyncSession, changes: dict[int, tuple[str, list[str]]]
) -> None:
    """Through do_update_conversation: audited, evented, heard by automation."""
    from wadesk.conversations.actions import _label_names, do_update_conversation

    conversations = (
        await session.scalars(select(Conversation).where(Conversation.id.in_(sorted(changes))))
    ).all()
    async with busy(session):
        for conversation in conversations:
            priority, labels = changes[conversation.id]
            current = await _label_names(session, conversation.id) if labels else []
            wanted = sorted(set(current) | set(labels))
            await do_update_conversation(
                session,
                actor=SYSTEM,
                conversation=conversation,
                priority=priority,
                labels=wanted if wanted != current else None,
            )


# ------------------------------------------------------------------ conversation changes


async def on_conversation_change(
    session: AsyncSession, conversation: Conversation, changes: dict[str, Any]
) -> None:
    """hooks.after_conversation_change: keep the queue in step and fill freed slots."""
    if session.info.get(BUSY):
        return
    settings = await inbox_settings(session, conversation.inbox_id)
    freed = False
    requeue_at: datetime | None = None
    if "status" in changes:
        before, after = changes["status"]
        if after == "resolved":
            await session.execute(
                delete(QueueEntry).where(QueueEntry.conversation_id == conversation.id)
            )
            assignee_before = changes.get("assignee_id", (conversation.assignee_id,))[0]
            freed = assignee_before is not None or conversation.assignee_id is not None
        elif before == "resolved" and conversation.assignee_id is None:
            requeue_at = utcnow()
    if "assignee_id" in changes:
        before_id, after_id = changes["assignee_id"]
        if before_id is not None:
            freed = True
        if after_id is not None:
            await session.execute(
                delete(QueueEntry).where(QueueEntry.conversation_id == conversation.id)
            )
        elif conversation.status != "resolved":
            requeue_at = conversation.created_at  # back in line where it was
    if "priority" in changes and conversation.assignee_id is None:
        await session.execute(
            update(QueueEntry)
            .where(QueueEntry.conversation_id == conversation.id)
            .values(rank=PRIORITY_RANK.get(conversation.priority, 0))
        )
    if requeue_at is not None and settings.enabled:
        await enqueue(
            session, [await _queue_row_for(session, conversation, enqueued_at=requeue_at)]
        )
        queue_event(
            session, "routing.queue_changed", {"inbox_ids": [conversation.inbox_id], "queued": 1}
        )
        freed = True
    if freed:
        await drain(session, wait=False)


# ------------------------------------------------------------------ availability and presence


async def _state(session: AsyncSession, user_id: int, *, lock: bool = True) -> AgentState:
    insert = insert_for(session.bind.dialect.name)
    await session.execute(
        insert(cast(Table, AgentState.__table__))
        .values(
            user_id=user_id,
            availability="offline",
            languages=[],
            status_changed_at=utcnow(),
            assigned_total=0,
        )
        .on_conflict_do_nothing()
    )
    query = select(AgentState).where(AgentState.user_id == user_id)
    if lock:
        query = query.with_for_update()
    state = (await session.scalars(query.execution_options(populate_existing=True))).one()
    return state


async def get_state(session: AsyncSession, user_id: int) -> AgentState:
    return await session.get(AgentState, user_id) or AgentState(
        user_id=user_id,
        availability="offline",
        languages=[],
        capacity=None,
        assigned_total=0,
        status_changed_at=utcnow(),
    )


async def do_set_availability(
    session: AsyncSession,
    *,
    actor: Actor,
    user_id: int,
    availability: str,
    automatic: bool = False,
) -> AgentState:
    if availability not in AVAILABILITY:
        raise RoutingError(
            "invalid_availability", f"availability is one of {', '.join(AVAILABILITY)}"
        )
    await lock_routing(session)
    state = await _state(session, user_id)
    now = utcnow()
    before = state.availability
    if automatic:
        state.auto_offline_from = before if before != "offline" else state.auto_offline_from
    else:
        state.last_seen_at, state.auto_offline_from = now, None
    if before == availability:
        return state
    state.availability, state.status_changed_at = availability, now
    await session.flush()
    await record_many(
        session,
        actor,
        [
            (
                "agent.status_change",
                "user",
                user_id,
                {"before": before, "after": availability, "automatic": automatic},
            )
        ],
    )
    queue_event(
        session,
        "agent.status_changed",
        {"user_id": user_id, "availability": availability, "before": before},
    )
    if availability == "offline":
        await _return_unanswered(session, actor, user_id)
    await drain(session, reason="agent_online" if availability == "online" else "requeued")
    return state


async def _return_unanswered(session: AsyncSession, actor: Actor, user_id: int) -> int:
    """Inboxes set to 'return': the agent's conversations nobody answered go back in line."""
    inbox_ids = (
        await session.scalars(
            select(InboxRouting.inbox_id).where(InboxRouting.offline_behaviour == "return")
        )
    ).all()
    if not inbox_ids:
        return 0
    answered = exists().where(
        Message.conversation_id == Conversation.id,
        Message.direction == "out",
        Message.status != "note",
    )
    conversations = (
        await session.scalars(
            select(Conversation).where(
                Conversation.assignee_id == user_id,
                Conversation.status != "resolved",
                Conversation.inbox_id.in_(inbox_ids),
                ~answered,
            )
        )
    ).all()
    if not conversations:
        return 0
    from wadesk.conversations.actions import do_update_conversation

    rows = []
    async with busy(session):
        for conversation in conversations:
            await do_update_conversation(
                session, actor=actor, conversation=conversation, assignee_id=None
            )
            rows.append(
                await _queue_row_for(session, conversation, enqueued_at=conversation.created_at)
            )
    await enqueue(session, rows)
    queue_event(
        session,
        "routing.queue_changed",
        {"inbox_ids": sorted({c.inbox_id for c in conversations}), "queued": len(rows)},
    )
    return len(rows)


async def touch_presence(session: AsyncSession, user_id: int) -> None:
    """A live connection of the person (the realtime stream calls this): keeps them from being
    taken offline by the sweep, and brings back the availability the sweep took away."""
    table = cast(Table, AgentState.__table__)
    restore = (
        await session.execute(
            update(table)
            .where(table.c.user_id == user_id)
            .values(last_seen_at=utcnow())
            .returning(table.c.auto_offline_from)
        )
    ).scalar()
    if restore:
        await do_set_availability(
            session,
            actor=Actor(type="user", id=str(user_id), user_id=user_id),
            user_id=user_id,
            availability=restore,
        )


async def sweep_presence(session: AsyncSession, timeout_seconds: float) -> int:
    """Agents with no sign of life for ``timeout_seconds`` go offline (automatically)."""
    cutoff = utcnow() - timedelta(seconds=timeout_seconds)
    stale = (
        await session.scalars(
            select(AgentState.user_id).where(
                AgentState.availability != "offline",
                (AgentState.last_seen_at < cutoff) | AgentState.last_seen_at.is_(None),
            )
        )
    ).all()
    for user_id in stale:
        await do_set_availability(
            session, actor=SYSTEM, user_id=user_id, availability="offline", automatic=True
        )
    return len(stale)


# ------------------------------------------------------------------ settings


async def do_update_agent(
    session: AsyncSession,
    *,
    actor: Actor,
    user_id: int,
    capacity: int | None = None,
    clear_capacity: bool = False,
    languages: list[str] | None = None,
) -> AgentState:
    """capacity: a personal override; clear_capacity: back to the inbox's or the default."""
    await lock_routing(session)
    state = await _state(session, user_id)
    details: dict[str, Any] = {}
    raised = False
    if clear_capacity:
        capacity = None
    if (capacity is not None or clear_capacity) and capacity != state.capacity:
        if capacity is not None and not 0 <= capacity <= 1000:
            raise RoutingError("invalid_capacity", "capacity is between 0 and 1000")
        details["capacity"] = {"before": state.capacity, "after": capacity}
        raised = capacity is None or state.capacity is None or capacity > state.capacity
        state.capacity = capacity
    if languages is not None:
        clean = sorted({code.strip().lower() for code in languages if code.strip()})
        bad = [c for c in clean if not lang.supported(c)]
        if bad:
            raise RoutingError("invalid_language", f"unknown language code(s): {', '.join(bad)}")
        if clean != sorted(state.languages or []):
            details["languages"] = {"before": state.languages, "after": clean}
            state.languages = clean
    if details:
        await session.flush()
        await record_many(session, actor, [("agent.routing_update", "user", user_id, details)])
        queue_event(session, "agent.status_changed", {"user_id": user_id})
        if raised:
            await drain(session, reason="capacity_raised")
    return state


async def do_update_inbox_settings(
    session: AsyncSession, *, actor: Actor, inbox_id: int, values: dict[str, Any]
) -> InboxRouting:
    if "strategy" in values and values["strategy"] not in STRATEGIES:
        raise RoutingError("invalid_strategy", f"strategy is one of {', '.join(STRATEGIES)}")
    if "offline_behaviour" in values and values["offline_behaviour"] not in OFFLINE_BEHAVIOURS:
        raise RoutingError(
            "invalid_offline_behaviour",
            f"offline_behaviour is one of {', '.join(OFFLINE_BEHAVIOURS)}",
        )
    await lock_routing(session)
    row = await session.get(InboxRouting, inbox_id)
    if row is None:
        row = default_inbox_settings(inbox_id)
        session.add(row)
    before = {k: getattr(row, k) for k in values}
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    await session.flush()
    await record_many(
        session,
        actor,
        [("routing.inbox_settings", "inbox", inbox_id, {"before": before, "after": values})],
    )
    queue_event(session, "routing.queue_changed", {"inbox_ids": [inbox_id]})
    await drain(session, reason="settings_changed")
    return row


async def do_update_config(
    session: AsyncSession, *, actor: Actor, values: dict[str, Any]
) -> RoutingConfig:
    if "languages" in values:
        clean = sorted({str(c).strip().lower() for c in values["languages"] if str(c).strip()})
        bad = [c for c in clean if not lang.supported(c)]
        if bad:
            raise RoutingError("invalid_language", f"unknown language code(s): {', '.join(bad)}")
        values = {**values, "languages": clean}
    await lock_routing(session)
    row = await session.get(RoutingConfig, 1)
    if row is None:
        row = default_config()
        session.add(row)
    before = {k: getattr(row, k) for k in values}
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    await session.flush()
    await record_many(
        session, actor, [("routing.config", None, None, {"before": before, "after": values})]
    )
    await drain(session, reason="settings_changed")
    return row


# ------------------------------------------------------------------ manual assignment


async def do_reassign(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation: Conversation,
    user_id: int | None,
    force: bool = False,
) -> Conversation:
    """A supervisor's hand assignment. Beyond the person's capacity only with ``force``."""
    from wadesk.conversations.actions import do_update_conversation

    if conversation.status == "resolved":
        raise RoutingError("conversation_resolved", "This conversation is resolved.", 409)
    await lock_routing(session)
    if user_id is not None:
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            raise RoutingError("unknown_user", "No such active person.", 404)
        member = await session.scalar(
            select(InboxMember.user_id).where(
                InboxMember.inbox_id == conversation.inbox_id, InboxMember.user_id == user_id
            )
        )
        if member is None and user.role != "admin":
            raise RoutingError(
                "not_inbox_member", "This person is not a member of the conversation's inbox."
            )
        state = await _state(session, user_id)
        if conversation.assignee_id != user_id:
            load = await session.scalar(
                select(func.count()).where(
                    Conversation.assignee_id == user_id, Conversation.status != "resolved"
                )
            )
            settings = await inbox_settings(session, conversation.inbox_id)
            config = await load_config(session)
            capacity = (
                state.capacity
                if state.capacity is not None
                else settings.capacity
                if settings.capacity is not None
                else config.default_capacity
            )
            if (load or 0) >= capacity and not force:
                raise RoutingError(
                    "capacity_exceeded",
                    f"This person has {load} open conversations (capacity {capacity});"
                    " assign anyway with force.",
                    409,
                )
            state.last_assigned_at = utcnow()
    await do_update_conversation(
        session, actor=actor, conversation=conversation, assignee_id=user_id
    )
    await record_many(
        session,
        actor,
        [
            (
                "routing.reassign",
                "conversation",
                conversation.id,
                {"conversation_id": conversation.id, "assignee_id": user_id, "force": force},
            )
        ],
    )
    return conversation


# ------------------------------------------------------------------ priority on attribute change


async def reevaluate_contact(session: AsyncSession, contact_id: int) -> int:
    """The contact's attributes changed: the priority rules again, for their unresolved
    conversations (priority only rises; tags are added, not removed). Returns how many
    conversations changed."""
    from wadesk.conversations.actions import _label_names, do_update_conversation

    contact = await session.get(Contact, contact_id)
    if contact is None:
        return 0
    config = await load_config(session)
    conversations = (
        await session.scalars(
            select(Conversation).where(
                Conversation.contact_id == contact_id, Conversation.status != "resolved"
            )
        )
    ).all()
    if not conversations:
        return 0
    count = (await _conversations_30d(session, [contact_id])).get(contact_id, 0)
    tags = priority_tags(
        contact.attributes or {},
        count,
        returns_threshold=config.returns_threshold,
        spend_threshold=config.spend_threshold,
        frequent_threshold=config.frequent_threshold,
    )
    changed = 0
    now = utcnow()
    for conversation in conversations:
        facts = await session.get(ConversationRouting, conversation.id)
        if facts is None:
            facts = ConversationRouting(
                conversation_id=conversation.id, tags=[], matched_rules=[], evaluated_at=now
            )
            session.add(facts)
        facts.evaluated_at = now
        new = [t for t in tags if t not in (facts.tags or [])]
        if not new:
            continue
        changed += 1
        facts.tags = [*(facts.tags or []), *new]
        if facts.first_response_due_at is None and config.first_response_seconds > 0:
            facts.first_response_due_at = now + timedelta(seconds=config.first_response_seconds)
        priority = higher_priority(conversation.priority, *(TAG_PRIORITY[t] for t in new))
        current = await _label_names(session, conversation.id)
        wanted = sorted(set(current) | set(new))
        async with busy(session):
            await do_update_conversation(
                session,
                actor=SYSTEM,
                conversation=conversation,
                priority=priority,
                labels=wanted if wanted != current else None,
            )
        await session.execute(
            update(QueueEntry)
            .where(QueueEntry.conversation_id == conversation.id)
            .values(rank=PRIORITY_RANK.get(conversation.priority, 0))
        )
        queue_event(session, "routing.queue_changed", {"inbox_ids": [conversation.inbox_id]})
    await session.flush()
    return changed


async def sweep_contacts(session: AsyncSession, since: datetime) -> int:
    """Contacts changed since ``since`` that have unresolved conversations: re-evaluated.

    A contact created by ingest (``updated_at == created_at``) is skipped: its conversation was
    evaluated when it opened, and in a burst of new customers re-reading each one cost a
    sixth of the processing."""
    ids = (
        await session.scalars(
            select(Contact.id)
            .where(
                Contact.updated_at > since,
                Contact.updated_at > Contact.created_at,
                exists().where(
                    Conversation.contact_id == Contact.id, Conversation.status != "resolved"
                ),
            )
            .order_by(Contact.id)
            .limit(500)
        )
    ).all()
    changed = 0
    for contact_id in ids:
        changed += await reevaluate_contact(session, contact_id)
    return changed


# ------------------------------------------------------------------ first-response targets


async def sweep_first_responses(session: AsyncSession) -> int:
    """Record first responses, and count a breach once when a target passes unanswered."""
    now = utcnow()
    rows = (
        (
            await session.execute(
                select(
                    ConversationRouting.conversation_id,
                    ConversationRouting.first_response_due_at,
                    ConversationRouting.breached_at,
                )
                .where(
                    ConversationRouting.first_response_at.is_(None),
                    ConversationRouting.first_response_due_at.is_not(None),
                )
                .limit(2000)
            )
        )
        .tuples()
        .all()
    )
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    answered = dict(
        (
            await session.execute(
                select(Message.conversation_id, func.min(Message.created_at))
                .where(
                    Message.conversation_id.in_(ids),
                    Message.direction == "out",
                    Message.status != "note",
                )
                .group_by(Message.conversation_id)
            )
        )
        .tuples()
        .all()
    )
    table = cast(Table, ConversationRouting.__table__)
    changed = 0
    breaches = []
    for cid, due, breached in rows:
        assert due is not None
        at = answered.get(cid)
        values: dict[str, Any] = {}
        if at is not None:
            values["first_response_at"] = at
            if at > due and breached is None:
                values["breached_at"] = due
        elif now > due and breached is None:
            values["breached_at"] = due
        if values:
            changed += 1
            if "breached_at" in values:
                breaches.append(cid)
            await session.execute(
                update(table).where(table.c.conversation_id == cid).values(**values)
            )
    if breaches:
        await record_many(
            session,
            SYSTEM,
            [
                ("routing.first_response_breach", "conversation", cid, {"conversation_id": cid})
                for cid in breaches
            ],
        )
        queue_event(session, "routing.first_response_breached", {"conversation_ids": breaches})
    return changed
