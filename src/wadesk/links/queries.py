"""Reads of links and their analytics, always limited to what the principal may see.

Admins see every link; supervisors the links of their inboxes and the links without an inbox.
Conversation figures count only conversations in inboxes the principal may see.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal
from wadesk.conversations.models import Conversation, Message
from wadesk.inboxes.models import Inbox
from wadesk.links.models import Link, LinkAttribution, LinkClickDay
from wadesk.links.schemas import CampaignStats, DayStats, LinkStats, Totals

CHUNK = 500


def visible_links(principal: Principal) -> Select[tuple[Link]]:
    query = select(Link)
    if principal.inbox_ids is not None:
        visible = Link.inbox_id.in_(sorted(principal.inbox_ids))
        query = query.where(or_(Link.inbox_id.is_(None), visible))
    return query


async def get_link(session: AsyncSession, principal: Principal, link_id: int) -> Link | None:
    link: Link | None = await session.scalar(visible_links(principal).where(Link.id == link_id))
    return link


async def get_link_by_slug(session: AsyncSession, slug: str) -> Link | None:
    link: Link | None = await session.scalar(select(Link).where(Link.slug == slug))
    return link


async def list_links(
    session: AsyncSession,
    principal: Principal,
    *,
    campaign: str | None = None,
    active: bool | None = None,
    q: str | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[Link]:
    query = visible_links(principal)
    if campaign is not None:
        query = query.where(Link.campaign == campaign)
    if active is not None:
        query = query.where(Link.is_active.is_(active))
    if q:
        like = f"%{q.strip().lower()}%"
        query = query.where(
            or_(
                func.lower(Link.name).like(like),
                Link.slug.like(like),
                func.lower(Link.campaign).like(like),
                func.lower(Link.ref_code).like(like),
            )
        )
    if after_id is not None:
        query = query.where(Link.id < after_id)
    return list((await session.scalars(query.order_by(Link.id.desc()).limit(limit))).all())


async def inbox_names(session: AsyncSession, inbox_ids: Iterable[int | None]) -> dict[int, str]:
    ids = sorted({i for i in inbox_ids if i is not None})
    if not ids:
        return {}
    rows = await session.execute(select(Inbox.id, Inbox.name).where(Inbox.id.in_(ids)))
    return {int(i): str(n) for i, n in rows.tuples()}


async def number_options(session: AsyncSession, principal: Principal) -> list[Inbox]:
    """The inboxes whose numbers the link builder offers."""
    rows = await session.scalars(
        select(Inbox)
        .where(principal.inbox_filter(Inbox.id), Inbox.display_phone_number.is_not(None))
        .order_by(Inbox.id)
    )
    return list(rows.all())


# --- analytics -------------------------------------------------------------------------------


@dataclass
class _Day:
    clicks: int = 0
    uniques: int = 0
    bot_clicks: int = 0
    conversations: int = 0
    resolved: int = 0


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    start = datetime.combine(since, time.min, tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    return start, end


async def _figures(
    session: AsyncSession,
    principal: Principal,
    link_ids: Sequence[int],
    since: date,
    until: date,
) -> tuple[Totals, list[DayStats]]:
    days: dict[date, _Day] = defaultdict(_Day)
    start, end = _bounds(since, until)
    for chunk in _chunks(sorted(link_ids)):
        clicks = await session.execute(
            select(
                LinkClickDay.day,
                func.sum(LinkClickDay.clicks),
                func.sum(LinkClickDay.uniques),
                func.sum(LinkClickDay.bot_clicks),
            )
            .where(
                LinkClickDay.link_id.in_(chunk),
                LinkClickDay.day >= since,
                LinkClickDay.day <= until,
            )
            .group_by(LinkClickDay.day)
        )
        for day, people, uniques, bots in clicks.tuples():
            entry = days[day]
            entry.clicks += int(people or 0)
            entry.uniques += int(uniques or 0)
            entry.bot_clicks += int(bots or 0)
    conversation_ids: list[int] = []
    for chunk in _chunks(sorted(link_ids)):
        started = await session.execute(
            select(
                LinkAttribution.conversation_id,
                LinkAttribution.attributed_at,
                Conversation.status,
            )
            .join(Conversation, Conversation.id == LinkAttribution.conversation_id)
            .where(
                LinkAttribution.link_id.in_(chunk),
                LinkAttribution.attributed_at >= start,
                LinkAttribution.attributed_at < end,
                principal.inbox_filter(LinkAttribution.inbox_id),
            )
        )
        for conversation_id, attributed_at, status in started.tuples():
            entry = days[attributed_at.astimezone(UTC).date()]
            entry.conversations += 1
            entry.resolved += status == "resolved"
            conversation_ids.append(int(conversation_id))
    response_times = await first_response_seconds(session, conversation_ids)
    series = [
        DayStats(
            day=day,
            clicks=days[day].clicks if day in days else 0,
            uniques=days[day].uniques if day in days else 0,
            bot_clicks=days[day].bot_clicks if day in days else 0,
            conversations=days[day].conversations if day in days else 0,
            resolved=days[day].resolved if day in days else 0,
        )
        for day in _each_day(since, until)
    ]
    clicks_total = sum(d.clicks for d in series)
    conversations = sum(d.conversations for d in series)
    values = list(response_times.values())
    totals = Totals(
        clicks=clicks_total,
        uniques=sum(d.uniques for d in series),
        bot_clicks=sum(d.bot_clicks for d in series),
        conversations=conversations,
        resolved=sum(d.resolved for d in series),
        responded=len(values),
        first_response_avg_s=round(statistics.fmean(values), 1) if values else None,
        first_response_median_s=round(statistics.median(values), 1) if values else None,
        conversion_rate=round(conversations / clicks_total, 4) if clicks_total else None,
    )
    return totals, series


async def first_response_seconds(
    session: AsyncSession, conversation_ids: Sequence[int]
) -> dict[int, float]:
    """Per conversation: seconds from its first inbound message to the first reply the
    customer saw after it (private notes do not count; unanswered conversations are left out)."""
    result: dict[int, float] = {}
    for chunk in _chunks(sorted(set(conversation_ids))):
        first_in = (
            select(
                Message.conversation_id.label("cid"),
                func.min(Message.created_at).label("first_in"),
            )
            .where(Message.conversation_id.in_(chunk), Message.direction == "in")
            .group_by(Message.conversation_id)
            .subquery()
        )
        rows = await session.execute(
            select(first_in.c.cid, first_in.c.first_in, func.min(Message.created_at))
            .join(Message, Message.conversation_id == first_in.c.cid)
            .where(
                Message.direction == "out",
                Message.type != "note",  # a private note is not an answer to the customer
                Message.created_at >= first_in.c.first_in,
            )
            .group_by(first_in.c.cid, first_in.c.first_in)
        )
        for cid, inbound_at, outbound_at in rows.tuples():
            inbound = _aware(inbound_at)
            outbound = _aware(outbound_at)
            result[int(cid)] = max(0.0, (outbound - inbound).total_seconds())
    return result


def _aware(value: datetime | str) -> datetime:
    """Aggregates bypass the column type on SQLite (a string comes back): parse it as UTC."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _chunks(values: Sequence[int]) -> list[Sequence[int]]:
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)] or [[]]


def _each_day(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


async def link_stats(
    session: AsyncSession, principal: Principal, link: Link, since: date, until: date
) -> LinkStats:
    totals, series = await _figures(session, principal, [link.id], since, until)
    return LinkStats(
        link_id=link.id,
        slug=link.slug,
        campaign=link.campaign,
        since=since,
        until=until,
        totals=totals,
        series=series,
    )


async def campaigns(
    session: AsyncSession,
    principal: Principal,
    since: date,
    until: date,
    *,
    campaign: str | None = None,
    with_series: bool = False,
) -> list[CampaignStats]:
    """Figures per campaign (links without a campaign together, as campaign null)."""
    query = select(Link.campaign, Link.id).where(
        Link.id.in_(visible_links(principal).with_only_columns(Link.id).scalar_subquery())
    )
    if campaign is not None:
        query = query.where(Link.campaign == campaign)
    groups: dict[str | None, list[int]] = defaultdict(list)
    for name, link_id in (await session.execute(query)).tuples():
        groups[name].append(int(link_id))
    result = []
    for name in sorted(groups, key=lambda n: (n is None, n or "")):
        totals, series = await _figures(session, principal, groups[name], since, until)
        result.append(
            CampaignStats(
                campaign=name,
                links=len(groups[name]),
                since=since,
                until=until,
                totals=totals,
                series=series if with_series else [],
            )
        )
    return result


# --- CSV -------------------------------------------------------------------------------------

CSV_DAY_COLUMNS = ("day", "clicks", "uniques", "bot_clicks", "conversations", "resolved")


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """UTF-8 CSV with a byte-order mark, so spreadsheet programs read any script correctly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return "\ufeff" + out.getvalue()


def link_stats_csv(stats: LinkStats) -> str:
    return to_csv(
        ("link_id", "slug", "campaign", *CSV_DAY_COLUMNS),
        (
            (
                stats.link_id,
                stats.slug,
                stats.campaign,
                d.day.isoformat(),
                d.clicks,
                d.uniques,
                d.bot_clicks,
                d.conversations,
                d.resolved,
            )
            for d in stats.series
        ),
    )


TOTAL_COLUMNS = (
    "clicks",
    "uniques",
    "bot_clicks",
    "conversations",
    "resolved",
    "responded",
    "first_response_avg_s",
    "first_response_median_s",
    "conversion_rate",
)


def _totals_row(totals: Totals) -> list[object]:
    return [getattr(totals, column) for column in TOTAL_COLUMNS]


def campaigns_csv(stats: Sequence[CampaignStats]) -> str:
    return to_csv(
        ("campaign", "links", "since", "until", *TOTAL_COLUMNS),
        (
            [s.campaign, s.links, s.since.isoformat(), s.until.isoformat(), *_totals_row(s.totals)]
            for s in stats
        ),
    )


async def links_csv(
    session: AsyncSession, principal: Principal, links: Sequence[Link], since: date, until: date
) -> str:
    rows = []
    for link in links:
        stats = await link_stats(session, principal, link, since, until)
        rows.append(
            [
                link.id,
                link.slug,
                link.name,
                link.campaign,
                link.source,
                link.ref_code,
                since.isoformat(),
                until.isoformat(),
                *_totals_row(stats.totals),
            ]
        )
    return to_csv(
        (
            "link_id",
            "slug",
            "name",
            "campaign",
            "source",
            "ref_code",
            "since",
            "until",
            *TOTAL_COLUMNS,
        ),
        rows,
    )
