"""Reads for the supervisors' live queue and the agents' own state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal
from wadesk.accounts.models import InboxMember, User
from wadesk.conversations.models import Conversation
from wadesk.db import utcnow
from wadesk.routing.actions import load_config
from wadesk.routing.models import AgentState, ConversationRouting, QueueEntry
from wadesk.teams.models import Team, TeamMember
from wadesk.teams.queries import supervised_user_ids


@dataclass
class WaitingRow:
    conversation_id: int
    inbox_id: int
    team_id: int | None
    team_name: str | None
    language: str | None
    priority: str
    tags: list[str]
    contact_name: str | None
    preview: str | None
    enqueued_at: datetime
    waiting_s: float
    first_response_due_at: datetime | None
    due_in_s: float | None


@dataclass
class AgentRow:
    user_id: int
    name: str
    email: str
    role: str
    availability: str
    load: int
    capacity: int
    capacity_override: int | None
    languages: list[str]
    last_assigned_at: datetime | None
    last_seen_at: datetime | None
    assigned_total: int
    inbox_ids: list[int] = field(default_factory=list)


@dataclass
class QueueOverview:
    waiting: int
    longest_wait_s: float
    breaches: int
    breaches_open: int
    entries: list[WaitingRow]
    agents: list[AgentRow]
    default_capacity: int


async def loads_of(session: AsyncSession, user_ids: list[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    rows = await session.execute(
        select(Conversation.assignee_id, func.count())
        .where(Conversation.assignee_id.in_(user_ids), Conversation.status != "resolved")
        .group_by(Conversation.assignee_id)
    )
    return {uid: int(n) for uid, n in rows.tuples() if uid is not None}


async def visible_agent_ids(session: AsyncSession, principal: Principal) -> list[int]:
    """Admins: every active person who is in an inbox or has a routing state; supervisors:
    members of their inboxes and of the teams they supervise."""
    if principal.inbox_ids is None:
        query = select(User.id).where(
            User.is_active.is_(True),
            or_(
                User.id.in_(select(InboxMember.user_id)),
                User.id.in_(select(AgentState.user_id)),
            ),
        )
        return sorted((await session.scalars(query)).all())
    ids = set(
        (
            await session.scalars(
                select(InboxMember.user_id).where(
                    InboxMember.inbox_id.in_(sorted(principal.inbox_ids))
                )
            )
        ).all()
    )
    ids |= await supervised_user_ids(session, principal.user_id)
    return sorted(ids)


async def agent_rows(session: AsyncSession, user_ids: list[int]) -> list[AgentRow]:
    if not user_ids:
        return []
    config = await load_config(session)
    users = (
        await session.scalars(select(User).where(User.id.in_(user_ids), User.is_active.is_(True)))
    ).all()
    states = {
        s.user_id: s
        for s in (
            await session.scalars(select(AgentState).where(AgentState.user_id.in_(user_ids)))
        ).all()
    }
    loads = await loads_of(session, user_ids)
    inboxes: dict[int, list[int]] = {}
    for inbox_id, user_id in (
        await session.execute(
            select(InboxMember.inbox_id, InboxMember.user_id).where(
                InboxMember.user_id.in_(user_ids)
            )
        )
    ).tuples():
        inboxes.setdefault(user_id, []).append(inbox_id)
    rows = []
    for user in users:
        state = states.get(user.id)
        override = state.capacity if state else None
        rows.append(
            AgentRow(
                user_id=user.id,
                name=user.name,
                email=user.email,
                role=user.role,
                availability=state.availability if state else "offline",
                load=loads.get(user.id, 0),
                capacity=override if override is not None else config.default_capacity,
                capacity_override=override,
                languages=list(state.languages or []) if state else [],
                last_assigned_at=state.last_assigned_at if state else None,
                last_seen_at=state.last_seen_at if state else None,
                assigned_total=state.assigned_total if state else 0,
                inbox_ids=sorted(inboxes.get(user.id, [])),
            )
        )
    order = {"online": 0, "busy": 1, "away": 2, "offline": 3}
    rows.sort(key=lambda r: (order.get(r.availability, 9), r.name.casefold(), r.user_id))
    return rows


async def queue_overview(
    session: AsyncSession, principal: Principal, *, limit: int = 200
) -> QueueOverview:
    now = utcnow()
    visible = principal.inbox_filter(QueueEntry.inbox_id)
    waiting, oldest = (
        await session.execute(select(func.count(), func.min(QueueEntry.enqueued_at)).where(visible))
    ).one()
    rows = (
        await session.execute(
            select(QueueEntry, Conversation, ConversationRouting, Team.name)
            .join(Conversation, Conversation.id == QueueEntry.conversation_id)
            .outerjoin(
                ConversationRouting,
                ConversationRouting.conversation_id == QueueEntry.conversation_id,
            )
            .outerjoin(Team, Team.id == QueueEntry.team_id)
            .where(visible)
            .order_by(QueueEntry.rank.desc(), QueueEntry.enqueued_at, QueueEntry.conversation_id)
            .limit(limit)
        )
    ).tuples()
    from wadesk.contacts.models import Contact

    entries = []
    contact_ids = set()
    raw = list(rows)
    for _e, conv, _f, _t in raw:
        contact_ids.add(conv.contact_id)
    names = dict(
        (
            await session.execute(
                select(Contact.id, Contact.name).where(Contact.id.in_(sorted(contact_ids)))
            )
        )
        .tuples()
        .all()
    )
    for entry, conv, facts, team_name in raw:
        due = facts.first_response_due_at if facts and facts.first_response_at is None else None
        entries.append(
            WaitingRow(
                conversation_id=entry.conversation_id,
                inbox_id=entry.inbox_id,
                team_id=entry.team_id,
                team_name=team_name,
                language=entry.language,
                priority=conv.priority,
                tags=list(facts.tags or []) if facts else [],
                contact_name=names.get(conv.contact_id),
                preview=conv.last_message_preview,
                enqueued_at=entry.enqueued_at,
                waiting_s=max(0.0, (now - entry.enqueued_at).total_seconds()),
                first_response_due_at=due,
                due_in_s=(due - now).total_seconds() if due else None,
            )
        )
    breach_filter = principal.inbox_filter(Conversation.inbox_id)
    breaches = await session.scalar(
        select(func.count())
        .select_from(ConversationRouting)
        .join(Conversation, Conversation.id == ConversationRouting.conversation_id)
        .where(ConversationRouting.breached_at.is_not(None), breach_filter)
    )
    breaches_open = await session.scalar(
        select(func.count())
        .select_from(ConversationRouting)
        .join(Conversation, Conversation.id == ConversationRouting.conversation_id)
        .where(
            ConversationRouting.breached_at.is_not(None),
            ConversationRouting.first_response_at.is_(None),
            Conversation.status != "resolved",
            breach_filter,
        )
    )
    config = await load_config(session)
    return QueueOverview(
        waiting=int(waiting or 0),
        longest_wait_s=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        breaches=int(breaches or 0),
        breaches_open=int(breaches_open or 0),
        entries=entries,
        agents=await agent_rows(session, await visible_agent_ids(session, principal)),
        default_capacity=config.default_capacity,
    )


async def team_member_ids(session: AsyncSession, team_id: int) -> set[int]:
    return set(
        (
            await session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team_id))
        ).all()
    )
