"""Routing rules: create, change, delete (ordered; audited)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.actions import Actor, record
from wadesk.db import utcnow
from wadesk.routing import language as lang
from wadesk.routing.actions import RoutingError
from wadesk.routing.models import RoutingRule
from wadesk.teams.models import Team


async def _validate(
    session: AsyncSession, conditions: dict[str, Any], actions: dict[str, Any]
) -> None:
    pattern = conditions.get("regex")
    if pattern:
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise RoutingError("invalid_regex", f"The regex does not compile: {exc}") from exc
    bad = [c for c in conditions.get("languages") or [] if not lang.supported(c)]
    if bad:
        raise RoutingError("invalid_language", f"unknown language code(s): {', '.join(bad)}")
    team_id = actions.get("team_id")
    if team_id is not None and await session.get(Team, team_id) is None:
        raise RoutingError("unknown_team", "No such team.", 422)


def _clean(conditions: dict[str, Any]) -> dict[str, Any]:
    """Only the conditions that say something (docs show what the rule really checks)."""
    out = {k: v for k, v in conditions.items() if v not in (None, [], "", {})}
    if "languages" in out:
        out["languages"] = sorted({str(c).lower() for c in out["languages"]})
    return out


async def do_create_rule(
    session: AsyncSession, *, actor: Actor, values: dict[str, Any]
) -> RoutingRule:
    conditions = _clean(values.get("conditions") or {})
    actions = _clean(values.get("actions") or {})
    await _validate(session, conditions, actions)
    position = values.get("position")
    if position is None:
        position = (await session.scalar(select(func.max(RoutingRule.position))) or 0) + 10
    now = utcnow()
    rule = RoutingRule(
        name=values["name"],
        position=position,
        enabled=values.get("enabled", True),
        stop=values.get("stop", False),
        conditions=conditions,
        actions=actions,
        match_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    await session.flush()
    await record(
        session,
        actor,
        "routing.rule_create",
        "routing_rule",
        rule.id,
        {"name": rule.name, "conditions": conditions, "actions": actions},
    )
    return rule


async def do_update_rule(
    session: AsyncSession, *, actor: Actor, rule: RoutingRule, values: dict[str, Any]
) -> RoutingRule:
    if "conditions" in values:
        values["conditions"] = _clean(values["conditions"] or {})
    if "actions" in values:
        values["actions"] = _clean(values["actions"] or {})
    await _validate(
        session,
        values.get("conditions", rule.conditions),
        values.get("actions", rule.actions),
    )
    before = {k: getattr(rule, k) for k in values}
    for key, value in values.items():
        setattr(rule, key, value)
    rule.updated_at = utcnow()
    await session.flush()
    await record(
        session,
        actor,
        "routing.rule_update",
        "routing_rule",
        rule.id,
        {"before": before, "after": values},
    )
    return rule


async def do_delete_rule(session: AsyncSession, *, actor: Actor, rule: RoutingRule) -> None:
    await record(
        session, actor, "routing.rule_delete", "routing_rule", rule.id, {"name": rule.name}
    )
    await session.delete(rule)
    await session.flush()
