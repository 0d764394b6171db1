"""Team changes: create, rename, delete, membership. Audited, evented."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.models import User
from wadesk.audit.actions import Actor, record
from wadesk.db import queue_event
from wadesk.routing.models import STRATEGIES
from wadesk.teams.models import TEAM_ROLES, Team, TeamMember


class TeamError(ValueError):
    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _check(values: dict[str, Any]) -> None:
    if "name" in values:
        name = str(values["name"] or "").strip()
        if not 1 <= len(name) <= 100:
            raise TeamError("invalid_name", "A team name has 1 to 100 characters.")
        values["name"] = name
    strategy = values.get("routing_strategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise TeamError("invalid_strategy", f"routing_strategy is one of {', '.join(STRATEGIES)}")


async def _name_free(session: AsyncSession, name: str, team_id: int | None = None) -> None:
    other = await session.scalar(select(Team.id).where(Team.name == name))
    if other is not None and other != team_id:
        raise TeamError("name_taken", "Another team has this name.", 409)


async def do_create_team(
    session: AsyncSession,
    *,
    actor: Actor,
    name: str,
    description: str = "",
    routing_strategy: str | None = None,
) -> Team:
    values: dict[str, Any] = {"name": name, "routing_strategy": routing_strategy}
    _check(values)
    await _name_free(session, values["name"])
    team = Team(
        name=values["name"], description=description[:500], routing_strategy=routing_strategy
    )
    session.add(team)
    await session.flush()
    await record(session, actor, "team.create", "team", team.id, {"name": team.name})
    queue_event(session, "team.changed", {"team_id": team.id})
    return team


async def do_update_team(
    session: AsyncSession, *, actor: Actor, team: Team, values: dict[str, Any]
) -> Team:
    _check(values)
    if "name" in values:
        await _name_free(session, values["name"], team.id)
    before = {k: getattr(team, k) for k in values}
    for key, value in values.items():
        setattr(team, key, value[:500] if key == "description" and value else value)
    await session.flush()
    await record(session, actor, "team.update", "team", team.id, {"before": before})
    queue_event(session, "team.changed", {"team_id": team.id})
    return team


async def do_delete_team(session: AsyncSession, *, actor: Actor, team: Team) -> None:
    await record(session, actor, "team.delete", "team", team.id, {"name": team.name})
    await session.delete(team)
    await session.flush()
    queue_event(session, "team.changed", {"team_id": team.id})


async def do_set_team_member(
    session: AsyncSession, *, actor: Actor, team: Team, user: User, role: str = "agent"
) -> TeamMember:
    if role not in TEAM_ROLES:
        raise TeamError("invalid_role", f"role is one of {', '.join(TEAM_ROLES)}")
    if role == "supervisor" and user.role == "agent":
        raise TeamError(
            "not_a_supervisor", "Only people with the supervisor or admin role supervise a team."
        )
    member = await session.get(TeamMember, (team.id, user.id))
    before = member.role if member else None
    if member is None:
        member = TeamMember(team_id=team.id, user_id=user.id, role=role)
        session.add(member)
    member.role = role
    await session.flush()
    if before != role:
        await record(
            session,
            actor,
            "team.member_set",
            "team",
            team.id,
            {"user_id": user.id, "before": before, "after": role},
        )
        queue_event(session, "team.changed", {"team_id": team.id})
    return member


async def do_remove_team_member(
    session: AsyncSession, *, actor: Actor, team: Team, user_id: int
) -> bool:
    result = await session.execute(
        delete(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user_id)
    )
    removed = bool(getattr(result, "rowcount", 0))
    if removed:
        await record(session, actor, "team.member_remove", "team", team.id, {"user_id": user_id})
        queue_event(session, "team.changed", {"team_id": team.id})
    return removed
