"""Reads of teams: who is in which, and what a supervisor oversees."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal
from wadesk.accounts.models import User
from wadesk.teams.models import Team, TeamMember


async def team_ids_of(session: AsyncSession, user_id: int, *, role: str | None = None) -> set[int]:
    query = select(TeamMember.team_id).where(TeamMember.user_id == user_id)
    if role is not None:
        query = query.where(TeamMember.role == role)
    return set((await session.scalars(query)).all())


async def supervised_user_ids(session: AsyncSession, user_id: int) -> set[int]:
    """Everyone in the teams this person supervises (themselves included)."""
    teams = await team_ids_of(session, user_id, role="supervisor")
    if not teams:
        return set()
    rows = await session.scalars(select(TeamMember.user_id).where(TeamMember.team_id.in_(teams)))
    return set(rows.all()) | {user_id}


async def visible_teams(session: AsyncSession, principal: Principal) -> list[Team]:
    """Admins: every team; others: the teams they belong to."""
    query = select(Team).order_by(Team.name, Team.id)
    if principal.role != "admin":
        query = query.where(Team.id.in_(await team_ids_of(session, principal.user_id)))
    return list((await session.scalars(query)).all())


async def can_see_team(session: AsyncSession, principal: Principal, team_id: int) -> bool:
    return principal.role == "admin" or team_id in await team_ids_of(session, principal.user_id)


async def can_manage_members(session: AsyncSession, principal: Principal, team_id: int) -> bool:
    if principal.role == "admin":
        return True
    return team_id in await team_ids_of(session, principal.user_id, role="supervisor")


async def members_of(
    session: AsyncSession, team_ids: list[int]
) -> dict[int, list[tuple[User, str]]]:
    out: dict[int, list[tuple[User, str]]] = defaultdict(list)
    if not team_ids:
        return out
    rows = await session.execute(
        select(TeamMember.team_id, User, TeamMember.role)
        .join(User, User.id == TeamMember.user_id)
        .where(TeamMember.team_id.in_(team_ids))
        .order_by(User.name, User.id)
    )
    for team_id, user, role in rows.tuples():
        out[team_id].append((user, role))
    return out
