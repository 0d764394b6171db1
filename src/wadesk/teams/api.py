"""/api/v1/teams: teams and their members. Admins create and delete teams; supervisors
manage the members of the teams they supervise."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from wadesk.accounts.access import Principal
from wadesk.accounts.models import User
from wadesk.deps import SessionDep, require_permission
from wadesk.errors import ApiError
from wadesk.teams import actions, queries
from wadesk.teams.models import Team
from wadesk.teams.schemas import (
    MemberIn,
    TeamCreate,
    TeamList,
    TeamMemberOut,
    TeamOut,
    TeamUpdate,
)

router = APIRouter(prefix="/teams", tags=["teams"])
TeamReader = Annotated[Principal, require_permission("teams.read")]
TeamAdmin = Annotated[Principal, require_permission("teams.manage")]
MemberManager = Annotated[Principal, require_permission("teams.members")]


def _error(exc: actions.TeamError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc))


async def _out(session: SessionDep, team: Team) -> TeamOut:
    members = (await queries.members_of(session, [team.id])).get(team.id, [])
    out = TeamOut.model_validate(team)
    out.members = [
        TeamMemberOut(user_id=u.id, name=u.name, email=u.email, role=r) for u, r in members
    ]
    return out


async def _team(session: SessionDep, principal: Principal, team_id: int) -> Team:
    team = await session.get(Team, team_id)
    if team is None or not await queries.can_see_team(session, principal, team_id):
        raise ApiError(404, "not_found", "No such team.")
    return team


@router.get("", response_model=TeamList)
async def list_teams(session: SessionDep, principal: TeamReader) -> TeamList:
    """Admins: every team; supervisors: the teams they belong to."""
    teams = await queries.visible_teams(session, principal)
    members = await queries.members_of(session, [t.id for t in teams])
    items = []
    for team in teams:
        out = TeamOut.model_validate(team)
        out.members = [
            TeamMemberOut(user_id=u.id, name=u.name, email=u.email, role=r)
            for u, r in members.get(team.id, [])
        ]
        items.append(out)
    return TeamList(items=items)


@router.post("", response_model=TeamOut, status_code=201)
async def create_team(session: SessionDep, principal: TeamAdmin, body: TeamCreate) -> TeamOut:
    try:
        team = await actions.do_create_team(
            session,
            actor=principal.actor,
            name=body.name,
            description=body.description,
            routing_strategy=body.routing_strategy,
        )
    except actions.TeamError as exc:
        raise _error(exc) from exc
    return await _out(session, team)


@router.get("/{team_id}", response_model=TeamOut)
async def get_team(session: SessionDep, principal: TeamReader, team_id: int) -> TeamOut:
    return await _out(session, await _team(session, principal, team_id))


@router.patch("/{team_id}", response_model=TeamOut)
async def update_team(
    session: SessionDep, principal: TeamAdmin, team_id: int, body: TeamUpdate
) -> TeamOut:
    team = await _team(session, principal, team_id)
    values = body.model_dump(exclude_unset=True)
    if values.get("routing_strategy") == "":
        values["routing_strategy"] = None
    try:
        await actions.do_update_team(session, actor=principal.actor, team=team, values=values)
    except actions.TeamError as exc:
        raise _error(exc) from exc
    return await _out(session, team)


@router.delete("/{team_id}", status_code=204)
async def delete_team(session: SessionDep, principal: TeamAdmin, team_id: int) -> Response:
    team = await _team(session, principal, team_id)
    await actions.do_delete_team(session, actor=principal.actor, team=team)
    return Response(status_code=204)


async def _managed(session: SessionDep, principal: Principal, team_id: int) -> Team:
    team = await _team(session, principal, team_id)
    if not await queries.can_manage_members(session, principal, team_id):
        raise ApiError(403, "forbidden", "Only this team's supervisors (or an admin) manage it.")
    return team


@router.put("/{team_id}/members/{user_id}", response_model=TeamOut)
async def set_member(
    session: SessionDep, principal: MemberManager, team_id: int, user_id: int, body: MemberIn
) -> TeamOut:
    team = await _managed(session, principal, team_id)
    user = await session.get(User, user_id)
    if user is None:
        raise ApiError(404, "not_found", "No such person.")
    if body.role == "supervisor" and principal.role != "admin":
        raise ApiError(403, "forbidden", "Only an admin names a team's supervisors.")
    try:
        await actions.do_set_team_member(
            session, actor=principal.actor, team=team, user=user, role=body.role
        )
    except actions.TeamError as exc:
        raise _error(exc) from exc
    return await _out(session, team)


@router.delete("/{team_id}/members/{user_id}", response_model=TeamOut)
async def remove_member(
    session: SessionDep, principal: MemberManager, team_id: int, user_id: int
) -> TeamOut:
    team = await _managed(session, principal, team_id)
    await actions.do_remove_team_member(session, actor=principal.actor, team=team, user_id=user_id)
    return await _out(session, team)
