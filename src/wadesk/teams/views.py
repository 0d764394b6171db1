"""Team pages: the list (admins create teams), a team's members (its supervisors manage them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from wadesk.accounts.access import SessionAuth
from wadesk.accounts.models import User
from wadesk.deps import SessionDep
from wadesk.teams import actions, queries
from wadesk.teams.models import Team
from wadesk.web.pages import PageError, redirect, render, signed_in

router = APIRouter(include_in_schema=False)
TeamReader = Annotated[SessionAuth, signed_in(permission="teams.read")]
TeamAdmin = Annotated[SessionAuth, signed_in(permission="teams.manage")]
MemberManager = Annotated[SessionAuth, signed_in(permission="teams.members")]
FormText = Annotated[str, Form(max_length=500)]


@router.get("/admin/teams")
async def teams_page(request: Request, session: SessionDep, auth: TeamReader) -> Response:
    teams = await queries.visible_teams(session, auth.principal)
    members = await queries.members_of(session, [t.id for t in teams])
    return render(request, "teams/list.html", {"teams": teams, "members": members}, auth=auth)


@router.post("/admin/teams")
async def create_team(
    request: Request,
    session: SessionDep,
    auth: TeamAdmin,
    name: FormText = "",
    description: FormText = "",
    routing_strategy: FormText = "",
) -> Response:
    try:
        team = await actions.do_create_team(
            session,
            actor=auth.principal.actor,
            name=name,
            description=description,
            routing_strategy=routing_strategy or None,
        )
    except actions.TeamError as exc:
        teams = await queries.visible_teams(session, auth.principal)
        members = await queries.members_of(session, [t.id for t in teams])
        return render(
            request,
            "teams/list.html",
            {"teams": teams, "members": members, "error": str(exc)},
            auth=auth,
            status=exc.status,
        )
    return redirect(f"/admin/teams/{team.id}")


async def _team(session: SessionDep, auth: SessionAuth, team_id: int) -> Team:
    team = await session.get(Team, team_id)
    if team is None or not await queries.can_see_team(session, auth.principal, team_id):
        raise PageError(404, "Not found", "No such team.")
    return team


@router.get("/admin/teams/{team_id}")
async def team_page(
    request: Request, session: SessionDep, auth: TeamReader, team_id: int
) -> Response:
    team = await _team(session, auth, team_id)
    people = (
        await session.scalars(
            select(User).where(User.is_active.is_(True)).order_by(User.name, User.id)
        )
    ).all()
    return render(
        request,
        "teams/detail.html",
        {
            "team": team,
            "members": (await queries.members_of(session, [team.id])).get(team.id, []),
            "people": people,
            "can_manage": auth.principal.can("teams.members")
            and await queries.can_manage_members(session, auth.principal, team.id),
        },
        auth=auth,
    )


async def _managed(session: SessionDep, auth: SessionAuth, team_id: int) -> Team:
    team = await _team(session, auth, team_id)
    if not await queries.can_manage_members(session, auth.principal, team_id):
        raise PageError(403, "Not allowed", "Only this team's supervisors or an admin manage it.")
    return team


@router.post("/admin/teams/{team_id}/members")
async def add_member(
    request: Request,
    session: SessionDep,
    auth: MemberManager,
    team_id: int,
    user_id: FormText = "",
    role: FormText = "agent",
) -> Response:
    team = await _managed(session, auth, team_id)
    user = await session.get(User, int(user_id)) if user_id.isdigit() else None
    if user is None:
        raise PageError(404, "Not found", "No such person.")
    if role == "supervisor" and auth.principal.role != "admin":
        raise PageError(403, "Not allowed", "Only an admin names a team's supervisors.")
    try:
        await actions.do_set_team_member(
            session, actor=auth.principal.actor, team=team, user=user, role=role
        )
    except actions.TeamError as exc:
        raise PageError(exc.status, "Not added", str(exc)) from exc
    return redirect(f"/admin/teams/{team.id}")


@router.post("/admin/teams/{team_id}/members/{user_id}/remove")
async def remove_member(
    request: Request, session: SessionDep, auth: MemberManager, team_id: int, user_id: int
) -> Response:
    team = await _managed(session, auth, team_id)
    await actions.do_remove_team_member(
        session, actor=auth.principal.actor, team=team, user_id=user_id
    )
    return redirect(f"/admin/teams/{team.id}")
