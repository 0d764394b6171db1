"""State changes of automation: rules, integrations, inbox hours/greeting/away, quick replies,
message templates, and the jobs queued by conversation hooks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.audit.actions import Actor, record
from wadesk.automation.flows import validate_definition
from wadesk.automation.hours import HoursInvalid, parse_hours
from wadesk.automation.models import (
    AutomationJob,
    AutomationRule,
    FaqDay,
    FaqEntry,
    Flow,
    FlowState,
    FlowVersion,
    InboxAutomation,
    Integration,
    MessageTemplate,
    QuickReply,
)
from wadesk.automation.rules import (
    RuleInvalid,
    validate_actions,
    validate_conditions,
    validate_trigger,
    validate_trigger_conditions,
)
from wadesk.conversations.hooks import InboundBatch
from wadesk.conversations.models import Conversation, Message
from wadesk.db import insert_for, queue_event, utcnow
from wadesk.teams.models import Team

AUTOMATION_ACTOR = Actor.system("automation")
RULES_CHANGED = "automation.rules_changed"
FAQ_CHANGED = "automation.faq_changed"
QUEUED = "automation.queued"
# A waiting rule fires only within this long after it became due (see queue_waiting_jobs).
WAITING_GRACE = timedelta(days=1)
SHORTCUT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
RULE_FIELDS = ("name", "trigger", "conditions", "actions", "after_handoff", "enabled")


class AutomationInvalid(ValueError):
    def __init__(self, code: str, message: str, field: str | None = None, status: int = 422):
        super().__init__(message)
        self.code = code
        self.field = field
        self.status = status


# ------------------------------------------------------------------ jobs (called by hooks)


async def inbox_is_automated(session: AsyncSession, inbox_id: int) -> bool:
    """Whether anything could answer in this inbox (one indexed lookup per batch)."""
    query = select(
        or_(
            exists().where(AutomationRule.inbox_id == inbox_id, AutomationRule.enabled.is_(True)),
            exists().where(Flow.inbox_id == inbox_id, Flow.enabled.is_(True)),
            exists().where(
                InboxAutomation.inbox_id == inbox_id,
                or_(
                    InboxAutomation.greeting_enabled,
                    InboxAutomation.away_enabled,
                    InboxAutomation.faq_enabled,
                ),
            ),
        )
    )
    return bool(await session.scalar(query))


async def queue_inbound_jobs(session: AsyncSession, batch: InboundBatch) -> None:
    """One job per new customer message, in the ingest transaction (no I/O here)."""
    if not batch.messages or not await inbox_is_automated(session, batch.inbox_id):
        return
    now = utcnow()
    for ref in batch.messages:
        session.add(
            AutomationJob(
                inbox_id=batch.inbox_id,
                conversation_id=ref.conversation_id,
                message_id=ref.message_id,
                trigger="message",
                opened=ref.conversation_id in batch.opened_conversation_ids,
                state="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    queue_event(session, QUEUED, {"inbox_id": batch.inbox_id})


async def queue_change_jobs(
    session: AsyncSession, conversation: Conversation, changes: dict[str, Any]
) -> None:
    status = changes.get("status")
    if status is None or status[1] != "resolved":
        return
    has_rules = await session.scalar(
        select(
            exists().where(
                AutomationRule.inbox_id == conversation.inbox_id,
                AutomationRule.trigger == "resolved",
                AutomationRule.enabled.is_(True),
            )
        )
    )
    if not has_rules:
        return
    now = utcnow()
    session.add(
        AutomationJob(
            inbox_id=conversation.inbox_id,
            conversation_id=conversation.id,
            message_id=None,
            trigger="resolved",
            opened=False,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    queue_event(session, QUEUED, {"inbox_id": conversation.inbox_id})


async def queue_waiting_jobs(session: AsyncSession, now: datetime | None = None) -> int:
    """Queue a "waiting" job for every open conversation whose customer has waited for a
    reply at least an enabled waiting rule's ``minutes``: once per rule and waiting episode.

    An episode is the customer's last message: the job carries its ``message_id`` (so a new
    customer message starts a new episode) and the rule in ``outcome.waiting_rule_id``; a job
    for the same message and rule, in any state, means it was already queued. Waiting means
    the conversation is open and no reply (a person's or a bot's; notes and failed sends do
    not count) was written since the customer's last message. Waits that began more than
    ``WAITING_GRACE`` before the rule became due are left alone, so that a new rule does not
    fire on every old open conversation and the sweep only scans recent ones. Run once per
    deployment (``automation/waiting.py``); no network I/O."""
    now = now or utcnow()
    rules = (
        await session.scalars(
            select(AutomationRule)
            .where(AutomationRule.trigger == "waiting", AutomationRule.enabled.is_(True))
            .order_by(AutomationRule.inbox_id, AutomationRule.position, AutomationRule.id)
        )
    ).all()
    by_inbox: dict[int, list[tuple[int, int]]] = {}
    for rule in rules:
        minutes = (rule.conditions or {}).get("minutes")
        if isinstance(minutes, int) and minutes > 0:
            by_inbox.setdefault(rule.inbox_id, []).append((rule.id, minutes))
    queued = 0
    for inbox_id, inbox_rules in by_inbox.items():
        shortest = min(m for _, m in inbox_rules)
        longest = max(m for _, m in inbox_rules)
        replied = exists().where(
            Message.conversation_id == Conversation.id,
            Message.direction == "out",
            Message.status.not_in(("note", "failed")),
            Message.created_at >= Conversation.last_customer_message_at,
        )
        waiting = (
            (
                await session.execute(
                    select(Conversation.id, Conversation.last_customer_message_at).where(
                        Conversation.inbox_id == inbox_id,
                        Conversation.status == "open",
                        Conversation.last_customer_message_at.is_not(None),
                        Conversation.last_customer_message_at <= now - timedelta(minutes=shortest),
                        Conversation.last_customer_message_at
                        > now - timedelta(minutes=longest) - WAITING_GRACE,
                        ~replied,
                    )
                )
            )
            .tuples()
            .all()
        )
        if not waiting:
            continue
        since = dict(waiting)
        conversation_ids = list(since)
        # The episode: each conversation's last customer message.
        episodes = dict(
            (
                await session.execute(
                    select(Message.conversation_id, func.max(Message.id))
                    .where(Message.conversation_id.in_(conversation_ids), Message.direction == "in")
                    .group_by(Message.conversation_id)
                )
            )
            .tuples()
            .all()
        )
        done: set[tuple[int, int | None, Any]] = {
            (conversation_id, message_id, (outcome or {}).get("waiting_rule_id"))
            for conversation_id, message_id, outcome in (
                await session.execute(
                    select(
                        AutomationJob.conversation_id,
                        AutomationJob.message_id,
                        AutomationJob.outcome,
                    ).where(
                        AutomationJob.conversation_id.in_(conversation_ids),
                        AutomationJob.trigger == "waiting",
                        AutomationJob.message_id.in_(list(episodes.values())),
                    )
                )
            )
            .tuples()
            .all()
        }
        for conversation_id, waited_since in since.items():
            message_id = episodes.get(conversation_id)
            if message_id is None or waited_since is None:
                continue
            for rule_id, minutes in inbox_rules:
                due = waited_since + timedelta(minutes=minutes)
                if due > now or due < now - WAITING_GRACE:
                    continue
                if (conversation_id, message_id, rule_id) in done:
                    continue
                session.add(
                    AutomationJob(
                        inbox_id=inbox_id,
                        conversation_id=conversation_id,
                        message_id=message_id,
                        trigger="waiting",
                        opened=False,
                        state="pending",
                        attempts=0,
                        next_attempt_at=now,
                        outcome={"waiting_rule_id": rule_id, "minutes": minutes},
                        created_at=now,
                    )
                )
                queued += 1
    if queued:
        queue_event(session, QUEUED, {"inbox_id": None})
    return queued


# ------------------------------------------------------------------ rules


def _changed_rules(session: AsyncSession, inbox_id: int) -> None:
    queue_event(session, RULES_CHANGED, {"inbox_id": inbox_id})


def _rule_values(
    data: dict[str, Any],
    integration_names: set[str],
    teams: dict[str, int] | None = None,
    flows: dict[str, int] | None = None,
) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in data:
        name = str(data["name"] or "").strip()
        if not name or len(name) > 200:
            raise RuleInvalid(
                "invalid_name", "A rule needs a name (at most 200 characters).", "name"
            )
        clean["name"] = name
    if "trigger" in data:
        clean["trigger"] = validate_trigger(data["trigger"])
    if "conditions" in data:
        clean["conditions"] = validate_conditions(data["conditions"])
    if "actions" in data:
        clean["actions"] = validate_actions(data["actions"], integration_names, teams, flows)
    for flag in ("after_handoff", "enabled"):
        if flag in data and data[flag] is not None:
            clean[flag] = bool(data[flag])
    return clean


async def integration_names(session: AsyncSession) -> set[str]:
    return set((await session.scalars(select(Integration.name))).all())


async def team_keys(session: AsyncSession) -> dict[str, int]:
    """Casefolded team names and ids (as text) -> team id: what an assign_team action may name."""
    keys: dict[str, int] = {}
    for team_id, name in (await session.execute(select(Team.id, Team.name))).tuples().all():
        keys[str(team_id)] = team_id
        keys.setdefault(name.strip().casefold(), team_id)
    return keys


async def flow_keys(session: AsyncSession, inbox_id: int) -> dict[str, int]:
    """Casefolded flow names and ids (as text) of an inbox -> flow id (start_flow actions)."""
    keys: dict[str, int] = {}
    rows = await session.execute(select(Flow.id, Flow.name).where(Flow.inbox_id == inbox_id))
    for flow_id, name in rows.tuples().all():
        keys[str(flow_id)] = flow_id
        keys.setdefault(name.strip().casefold(), flow_id)
    return keys


@dataclass(frozen=True, slots=True)
class _RuleLookups:
    """What a rule's actions may name: integrations, teams, the inbox's flows."""

    integrations: set[str]
    teams: dict[str, int]
    flows: dict[str, int]


async def _rule_lookups(session: AsyncSession, inbox_id: int) -> _RuleLookups:
    return _RuleLookups(
        await integration_names(session),
        await team_keys(session),
        await flow_keys(session, inbox_id),
    )


def _new_rule_values(data: dict[str, Any], lookups: _RuleLookups) -> dict[str, Any]:
    """The checked fields of a rule to create (trigger ``message`` unless given)."""
    values = _rule_values(
        {"trigger": "message", "conditions": {}, **data},
        lookups.integrations,
        lookups.teams,
        lookups.flows,
    )
    if "name" not in values or "actions" not in values:
        raise RuleInvalid("invalid_rule", "A rule needs a name and actions.")
    validate_trigger_conditions(values["trigger"], values["conditions"])
    return values


async def do_create_rule(
    session: AsyncSession, *, actor: Actor, inbox_id: int, data: dict[str, Any]
) -> AutomationRule:
    values = _new_rule_values(data, await _rule_lookups(session, inbox_id))
    return await _insert_rule(session, actor=actor, inbox_id=inbox_id, values=values)


async def _insert_rule(
    session: AsyncSession, *, actor: Actor, inbox_id: int, values: dict[str, Any]
) -> AutomationRule:
    """A checked rule, last in its inbox's order."""
    last = await session.scalar(
        select(func.max(AutomationRule.position)).where(AutomationRule.inbox_id == inbox_id)
    )
    rule = AutomationRule(
        inbox_id=inbox_id,
        position=(last or 0) + 10,
        matches=0,
        answered=0,
        handed_off=0,
        last_reviewed_at=utcnow(),
        **values,
    )
    session.add(rule)
    await session.flush()
    await record(
        session,
        actor,
        "automation_rule.create",
        "automation_rule",
        rule.id,
        {"inbox_id": inbox_id, **values},
    )
    _changed_rules(session, inbox_id)
    return rule


class ImportInvalid(ValueError):
    """One item of an import failed its checks; nothing of the import was written.
    ``index`` counts from 0 in the list given; ``name`` is the rule's name or the question."""

    def __init__(self, index: int, name: str | None, error: RuleInvalid | AutomationInvalid):
        super().__init__(str(error))
        self.index = index
        self.name = name
        self.code = error.code
        self.field = error.field


def _item_name(item: Any, key: str) -> str | None:
    value = item.get(key) if isinstance(item, dict) else None
    if value is None:
        return None
    return str(value).strip() or None


async def do_import_rules(
    session: AsyncSession,
    *,
    actor: Actor,
    inbox_id: int,
    items: list[Any],
    replace: bool = False,
) -> list[AutomationRule]:
    """Add rules to an inbox in the order given, after its rules or, with ``replace``, in
    their place. Every rule is checked (as the API checks one) before anything is written,
    so one bad rule leaves the inbox as it was (raises ``ImportInvalid``)."""
    lookups = await _rule_lookups(session, inbox_id)
    checked: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise RuleInvalid("invalid_rule", "A rule is a JSON object.")
            unknown = sorted(set(item) - set(RULE_FIELDS))
            if unknown:
                raise RuleInvalid(
                    "invalid_rule",
                    f"Unknown field {unknown[0]!r} (a rule has {', '.join(RULE_FIELDS)}).",
                    unknown[0],
                )
            checked.append(_new_rule_values(item, lookups))
        except RuleInvalid as exc:
            raise ImportInvalid(index, _item_name(item, "name"), exc) from exc
    replaced = 0
    if replace:
        old = (
            await session.scalars(select(AutomationRule).where(AutomationRule.inbox_id == inbox_id))
        ).all()
        for rule in old:
            await do_delete_rule(session, actor=actor, rule=rule)
        replaced = len(old)
        await session.flush()
    rules = [
        await _insert_rule(session, actor=actor, inbox_id=inbox_id, values=values)
        for values in checked
    ]
    await record(
        session,
        actor,
        "automation_rule.import",
        "inbox",
        inbox_id,
        {"added": len(rules), "replaced": replaced},
    )
    _changed_rules(session, inbox_id)
    return rules


async def do_update_rule(
    session: AsyncSession, *, actor: Actor, rule: AutomationRule, data: dict[str, Any]
) -> AutomationRule:
    values = _rule_values(
        data,
        await integration_names(session),
        await team_keys(session),
        await flow_keys(session, rule.inbox_id),
    )
    validate_trigger_conditions(
        values.get("trigger", rule.trigger), values.get("conditions", rule.conditions or {})
    )
    changes = {
        key: {"before": getattr(rule, key), "after": value}
        for key, value in values.items()
        if getattr(rule, key) != value
    }
    if not changes:
        return rule
    for key, value in values.items():
        setattr(rule, key, value)
    rule.updated_at = utcnow()
    # Editing a rule is reviewing it.
    rule.last_reviewed_at = utcnow()
    await record(session, actor, "automation_rule.update", "automation_rule", rule.id, changes)
    _changed_rules(session, rule.inbox_id)
    return rule


async def do_delete_rule(session: AsyncSession, *, actor: Actor, rule: AutomationRule) -> None:
    await record(
        session,
        actor,
        "automation_rule.delete",
        "automation_rule",
        rule.id,
        {"inbox_id": rule.inbox_id, "name": rule.name},
    )
    await session.delete(rule)
    _changed_rules(session, rule.inbox_id)


async def do_mark_reviewed(
    session: AsyncSession, *, actor: Actor, rule: AutomationRule
) -> AutomationRule:
    rule.last_reviewed_at = utcnow()
    await record(session, actor, "automation_rule.review", "automation_rule", rule.id)
    return rule


async def do_move_rule(
    session: AsyncSession, *, actor: Actor, rule: AutomationRule, offset: int
) -> list[int]:
    """Move a rule up (-1) or down (+1) in its inbox's order; renumbers 10, 20, 30..."""
    rules = list(
        (
            await session.scalars(
                select(AutomationRule)
                .where(AutomationRule.inbox_id == rule.inbox_id)
                .order_by(AutomationRule.position, AutomationRule.id)
            )
        ).all()
    )
    index = next(i for i, r in enumerate(rules) if r.id == rule.id)
    target = max(0, min(len(rules) - 1, index + offset))
    rules.insert(target, rules.pop(index))
    for position, item in enumerate(rules, start=1):
        item.position = position * 10
    await record(
        session,
        actor,
        "automation_rule.move",
        "automation_rule",
        rule.id,
        {"from": index + 1, "to": target + 1},
    )
    _changed_rules(session, rule.inbox_id)
    return [r.id for r in rules]


# ------------------------------------------------------------------ guided flows


def _flow_name(value: Any) -> str:
    name = str(value or "").strip()
    if not name or len(name) > 120:
        raise RuleInvalid("invalid_name", "A flow needs a name (at most 120 characters).", "name")
    return name


async def _flow_name_taken(
    session: AsyncSession, inbox_id: int, name: str, flow_id: int | None = None
) -> None:
    query = select(Flow.id).where(
        Flow.inbox_id == inbox_id, func.lower(Flow.name) == name.casefold()
    )
    if flow_id is not None:
        query = query.where(Flow.id != flow_id)
    if await session.scalar(query) is not None:
        raise AutomationInvalid(
            "name_taken", f"This inbox already has a flow named {name!r}.", "name", 409
        )


async def do_create_flow(
    session: AsyncSession, *, actor: Actor, inbox_id: int, data: dict[str, Any]
) -> Flow:
    """A flow with its version 1 (``definition`` checked by ``flows.validate_definition``)."""
    name = _flow_name(data.get("name"))
    definition = validate_definition(data.get("definition"))
    await _flow_name_taken(session, inbox_id, name)
    now = utcnow()
    enabled = bool(data["enabled"]) if data.get("enabled") is not None else True
    flow = Flow(
        inbox_id=inbox_id,
        name=name,
        enabled=enabled,
        version=1,
        definition=definition,
        started=0,
        completed=0,
        handed_off=0,
        timed_out=0,
        created_at=now,
        updated_at=now,
    )
    session.add(flow)
    await session.flush()
    session.add(FlowVersion(flow_id=flow.id, version=1, definition=definition, created_at=now))
    await record(
        session,
        actor,
        "automation_flow.create",
        "automation_flow",
        flow.id,
        {"inbox_id": inbox_id, "name": name, "enabled": enabled, "version": 1},
    )
    _changed_rules(session, inbox_id)
    return flow


async def do_update_flow(
    session: AsyncSession, *, actor: Actor, flow: Flow, data: dict[str, Any]
) -> Flow:
    """Rename, enable/disable, or save a new definition as the next version (customers in
    the flow finish on the version they started). Disabling ends the flow for everyone in
    it: their next message is handled by the rules."""
    changes: dict[str, Any] = {}
    if data.get("name") is not None:
        name = _flow_name(data["name"])
        if name != flow.name:
            await _flow_name_taken(session, flow.inbox_id, name, flow.id)
            changes["name"] = {"before": flow.name, "after": name}
    definition = None
    if data.get("definition") is not None:
        definition = validate_definition(data["definition"])
        if definition == flow.definition:
            definition = None
        else:
            changes["version"] = {"before": flow.version, "after": flow.version + 1}
    if data.get("enabled") is not None and bool(data["enabled"]) != flow.enabled:
        changes["enabled"] = {"before": flow.enabled, "after": bool(data["enabled"])}
    if not changes:
        return flow
    now = utcnow()
    if "name" in changes:
        flow.name = changes["name"]["after"]
    if definition is not None:
        flow.version += 1
        flow.definition = definition
        version = FlowVersion(
            flow_id=flow.id, version=flow.version, definition=definition, created_at=now
        )
        session.add(version)
    if "enabled" in changes:
        flow.enabled = changes["enabled"]["after"]
        if not flow.enabled:
            await session.execute(delete(FlowState).where(FlowState.flow_id == flow.id))
    flow.updated_at = now
    await record(session, actor, "automation_flow.update", "automation_flow", flow.id, changes)
    _changed_rules(session, flow.inbox_id)
    return flow


async def do_delete_flow(session: AsyncSession, *, actor: Actor, flow: Flow) -> None:
    """Gone with its versions; customers in it leave it. A rule that starts it adds a note."""
    await record(
        session,
        actor,
        "automation_flow.delete",
        "automation_flow",
        flow.id,
        {"inbox_id": flow.inbox_id, "name": flow.name, "version": flow.version},
    )
    await session.execute(delete(FlowState).where(FlowState.flow_id == flow.id))
    await session.execute(delete(FlowVersion).where(FlowVersion.flow_id == flow.id))
    await session.delete(flow)
    _changed_rules(session, flow.inbox_id)


async def do_expire_flows(session: AsyncSession, now: datetime | None = None) -> int:
    """End the flows whose customer went silent past the flow's time-out, counting them
    (the worker also ends an expired flow when the next message comes first)."""
    now = now or utcnow()
    ended = (
        await session.scalars(
            delete(FlowState).where(FlowState.expires_at <= now).returning(FlowState.flow_id)
        )
    ).all()
    per_flow: dict[int, int] = {}
    for flow_id in ended:
        per_flow[flow_id] = per_flow.get(flow_id, 0) + 1
    for flow_id, count in per_flow.items():
        await session.execute(
            update(Flow).where(Flow.id == flow_id).values(timed_out=Flow.timed_out + count)
        )
    return len(ended)


# ------------------------------------------------------------------ integrations


def _integration_values(data: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in data:
        name = str(data["name"] or "").strip()
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,59}", name):
            raise AutomationInvalid(
                "invalid_name",
                "An integration name is lower-case letters, digits, - and _.",
                "name",
            )
        clean["name"] = name
    if "url" in data:
        url = str(data["url"] or "")
        if not url.startswith(("http://", "https://")) or len(url) > 2000:
            raise AutomationInvalid(
                "invalid_url", "The URL starts with http:// or https://.", "url"
            )
        clean["url"] = url
    if "method" in data and data["method"] is not None:
        method = str(data["method"]).upper()
        if method not in ("GET", "POST"):
            raise AutomationInvalid("invalid_method", "method is GET or POST.", "method")
        clean["method"] = method
    if "headers" in data and data["headers"] is not None:
        headers = data["headers"]
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9-]{1,100}", k)
            for k, v in headers.items()
        ):
            raise AutomationInvalid(
                "invalid_headers", "headers maps header names to texts.", "headers"
            )
        clean["headers"] = headers
    if "secret_header" in data:
        header = data["secret_header"] or None
        if header is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,100}", str(header)):
            raise AutomationInvalid(
                "invalid_headers", "secret_header is a header name.", "secret_header"
            )
        clean["secret_header"] = header
    if "secret" in data and data["secret"] is not None:
        clean["secret"] = str(data["secret"]) or None
    if "timeout_seconds" in data and data["timeout_seconds"] is not None:
        timeout = float(data["timeout_seconds"])
        if not 0.1 <= timeout <= 30:
            raise AutomationInvalid(
                "invalid_timeout", "timeout_seconds is 0.1 to 30.", "timeout_seconds"
            )
        clean["timeout_seconds"] = timeout
    return clean


def _redacted(values: dict[str, Any]) -> dict[str, Any]:
    return {k: ("(set)" if k == "secret" and v else v) for k, v in values.items()}


async def do_create_integration(
    session: AsyncSession, *, actor: Actor, data: dict[str, Any]
) -> Integration:
    values = _integration_values({"method": "GET", "timeout_seconds": 3.0, **data})
    if "name" not in values or "url" not in values:
        raise AutomationInvalid("invalid_integration", "An integration needs a name and a URL.")
    if await session.scalar(select(Integration.id).where(Integration.name == values["name"])):
        raise AutomationInvalid(
            "name_taken", "Another integration has this name.", "name", status=409
        )
    integration = Integration(**{"headers": {}, **values})
    session.add(integration)
    await session.flush()
    await record(
        session, actor, "integration.create", "integration", integration.id, _redacted(values)
    )
    queue_event(session, RULES_CHANGED, {"inbox_id": None})
    return integration


async def do_update_integration(
    session: AsyncSession, *, actor: Actor, integration: Integration, data: dict[str, Any]
) -> Integration:
    values = _integration_values(data)
    if "name" in values and values["name"] != integration.name:
        raise AutomationInvalid(
            "name_fixed", "Rules refer to integrations by name: create a new one.", "name"
        )
    for key, value in values.items():
        setattr(integration, key, value)
    integration.updated_at = utcnow()
    await record(
        session, actor, "integration.update", "integration", integration.id, _redacted(values)
    )
    queue_event(session, RULES_CHANGED, {"inbox_id": None})
    return integration


async def do_delete_integration(
    session: AsyncSession, *, actor: Actor, integration: Integration
) -> None:
    await record(
        session,
        actor,
        "integration.delete",
        "integration",
        integration.id,
        {"name": integration.name},
    )
    await session.delete(integration)
    queue_event(session, RULES_CHANGED, {"inbox_id": None})


# ------------------------------------------------------------------ hours, greeting, away


async def inbox_automation(session: AsyncSession, inbox_id: int) -> InboxAutomation:
    current = await session.get(InboxAutomation, inbox_id)
    if current is None:
        current = InboxAutomation(
            inbox_id=inbox_id,
            timezone="UTC",
            schedule={},
            holidays=[],
            greeting_enabled=False,
            greeting_text="",
            greeting_after_days=30,
            away_enabled=False,
            away_text="",
            faq_enabled=False,
            faq_threshold=80,
        )
    return current


async def do_set_inbox_automation(
    session: AsyncSession, *, actor: Actor, inbox_id: int, data: dict[str, Any]
) -> InboxAutomation:
    current = await inbox_automation(session, inbox_id)
    merged = {
        "timezone": data.get("timezone", current.timezone),
        "schedule": data.get("schedule", current.schedule),
        "holidays": data.get("holidays", current.holidays),
    }
    try:
        parse_hours(merged["timezone"], merged["schedule"], merged["holidays"])
    except HoursInvalid as exc:
        raise AutomationInvalid("invalid_hours", str(exc), "schedule") from exc
    texts = {
        key: str(data[key]) if data.get(key) is not None else getattr(current, key)
        for key in ("greeting_text", "away_text")
    }
    flags = {
        key: bool(data[key]) if data.get(key) is not None else getattr(current, key)
        for key in ("greeting_enabled", "away_enabled", "faq_enabled")
    }
    for key, value in texts.items():
        if len(value) > 4096:
            raise AutomationInvalid("text_too_long", f"{key} holds at most 4,096 characters.", key)
    if flags["greeting_enabled"] and not texts["greeting_text"].strip():
        raise AutomationInvalid("text_required", "A greeting needs a text.", "greeting_text")
    if flags["away_enabled"] and not texts["away_text"].strip():
        raise AutomationInvalid("text_required", "An away message needs a text.", "away_text")
    days = current.greeting_after_days
    if data.get("greeting_after_days") is not None:
        days = int(data["greeting_after_days"])
        if not 1 <= days <= 3650:
            raise AutomationInvalid(
                "invalid_days", "greeting_after_days is 1 to 3650.", "greeting_after_days"
            )
    threshold = current.faq_threshold
    if data.get("faq_threshold") is not None:
        try:
            threshold = int(data["faq_threshold"])
        except (TypeError, ValueError):
            threshold = -1
        if not 0 <= threshold <= 100:
            raise AutomationInvalid(
                "invalid_threshold", "faq_threshold is 0 to 100 (percent).", "faq_threshold"
            )
    # Everything is valid: only now change the row.
    current.faq_threshold = threshold
    current.greeting_after_days = days
    current.timezone = merged["timezone"]
    current.schedule = {k: [list(i) for i in v] for k, v in (merged["schedule"] or {}).items()}
    current.holidays = sorted({str(h) for h in merged["holidays"] or []})
    for key, value in {**texts, **flags}.items():
        setattr(current, key, value)
    current.updated_at = utcnow()
    session.add(current)
    await session.flush()
    await record(
        session,
        actor,
        "inbox_automation.update",
        "inbox",
        inbox_id,
        {k: v for k, v in data.items() if v is not None},
    )
    _changed_rules(session, inbox_id)
    return current


# ------------------------------------------------------------------ FAQ bot

MAX_ALTERNATIVES = 20
FAQ_LANGUAGE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z]{2,4})?$")


def _faq_changed(session: AsyncSession, *inbox_ids: int | None) -> None:
    """Recompile the FAQ of these inboxes; a shared entry (None) concerns every inbox."""
    if None in inbox_ids:
        queue_event(session, FAQ_CHANGED, {"inbox_id": None})
        return
    for inbox_id in dict.fromkeys(inbox_ids):
        queue_event(session, FAQ_CHANGED, {"inbox_id": inbox_id})


def _faq_values(data: dict[str, Any]) -> dict[str, Any]:
    """Checked and tidied fields; the API's schema checks the same limits first."""
    clean: dict[str, Any] = {}
    if "question" in data:
        question = str(data["question"] or "").strip()
        if not question or len(question) > 500:
            raise AutomationInvalid(
                "invalid_question", "A question of 1 to 500 characters.", "question"
            )
        clean["question"] = question
    if "alternatives" in data and data["alternatives"] is not None:
        raw = data["alternatives"]
        if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
            raise AutomationInvalid(
                "invalid_alternatives", "alternatives is a list of texts.", "alternatives"
            )
        alternatives = list(dict.fromkeys(a.strip() for a in raw if a.strip()))
        if len(alternatives) > MAX_ALTERNATIVES or any(len(a) > 500 for a in alternatives):
            raise AutomationInvalid(
                "invalid_alternatives",
                f"At most {MAX_ALTERNATIVES} alternatives of at most 500 characters each.",
                "alternatives",
            )
        clean["alternatives"] = alternatives
    if "answer" in data:
        answer = str(data["answer"] or "")
        if not answer.strip() or len(answer) > 4096:
            raise AutomationInvalid(
                "invalid_answer", "An answer of 1 to 4,096 characters.", "answer"
            )
        clean["answer"] = answer
    if "language" in data:
        language = str(data["language"] or "").strip() or None
        if language is not None and not FAQ_LANGUAGE.match(language):
            raise AutomationInvalid(
                "invalid_language", "language is like en, pt_BR or hi (or empty).", "language"
            )
        clean["language"] = language
    if "enabled" in data and data["enabled"] is not None:
        clean["enabled"] = bool(data["enabled"])
    return clean


async def do_create_faq(
    session: AsyncSession, *, actor: Actor, inbox_id: int | None, data: dict[str, Any]
) -> FaqEntry:
    values = _faq_values({"alternatives": [], "enabled": True, **data})
    if not {"question", "answer"} <= set(values):
        raise AutomationInvalid("invalid_faq", "An FAQ entry needs a question and an answer.")
    now = utcnow()
    entry = FaqEntry(
        inbox_id=inbox_id,
        matches=0,
        answered=0,
        handed_off=0,
        last_reviewed_at=now,
        created_at=now,
        updated_at=now,
        **{"language": None, **values},
    )
    session.add(entry)
    await session.flush()
    await record(
        session, actor, "faq.create", "faq_entry", entry.id, {"inbox_id": inbox_id, **values}
    )
    _faq_changed(session, inbox_id)
    return entry


def _checked_faq_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item's checked values, or ``ImportInvalid`` naming the first bad one."""
    checked: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            values = _faq_values({"alternatives": [], **item})
            if not {"question", "answer"} <= set(values):
                raise AutomationInvalid(
                    "invalid_faq", "An FAQ entry needs a question and an answer."
                )
        except AutomationInvalid as exc:
            raise ImportInvalid(index, _item_name(item, "question"), exc) from exc
        checked.append(values)
    return checked


async def do_import_faq(
    session: AsyncSession, *, actor: Actor, inbox_id: int | None, items: list[dict[str, Any]]
) -> list[FaqEntry]:
    """Add FAQ entries (``question``, ``answer``, optional ``alternatives``, ``language``)
    to an inbox (None: shared). All are checked before any is written (``ImportInvalid``)."""
    _checked_faq_items(items)
    entries = [
        await do_create_faq(session, actor=actor, inbox_id=inbox_id, data=item) for item in items
    ]
    await _record_faq_import(session, actor, inbox_id, {"added": len(entries)})
    return entries


async def _record_faq_import(
    session: AsyncSession, actor: Actor, inbox_id: int | None, details: dict[str, Any]
) -> None:
    target = "inbox" if inbox_id is not None else None
    await record(session, actor, "faq.import", target, inbox_id, details)


@dataclass(frozen=True, slots=True)
class FaqReplaced:
    """What ``do_replace_faq`` did, in entries."""

    created: int
    updated: int
    unchanged: int
    deleted: int


def _question_key(question: str) -> str:
    return question.strip().casefold()


async def do_replace_faq(
    session: AsyncSession, *, actor: Actor, inbox_id: int | None, items: list[dict[str, Any]]
) -> FaqReplaced:
    """Make the FAQ entries of one scope (an inbox's own, or the shared ones with None) those
    of ``items``: an entry whose question matches an item's (ignoring case and outer spaces;
    each entry matches one item at most, oldest first) is updated in place, keeping its
    counters and ``enabled``; a missing ``alternatives``/``language`` clears them, as for a
    new entry. Other items are created and the scope's other entries deleted. Everything is
    checked before anything is written (``ImportInvalid``); every change is audited."""
    checked = _checked_faq_items(items)
    scope = FaqEntry.inbox_id.is_(None) if inbox_id is None else FaqEntry.inbox_id == inbox_id
    existing: dict[str, list[FaqEntry]] = {}
    for entry in (await session.scalars(select(FaqEntry).where(scope).order_by(FaqEntry.id))).all():
        existing.setdefault(_question_key(entry.question), []).append(entry)
    matched: list[tuple[FaqEntry | None, dict[str, Any]]] = []
    for item, values in zip(items, checked, strict=True):
        same = existing.get(_question_key(values["question"]))
        matched.append((same.pop(0) if same else None, item))
    missing = [entry for entries in existing.values() for entry in entries]
    for gone in sorted(missing, key=lambda e: e.id):
        await do_delete_faq(session, actor=actor, entry=gone)
    await session.flush()
    created = updated = 0
    for kept, item in matched:
        if kept is None:
            await do_create_faq(session, actor=actor, inbox_id=inbox_id, data=item)
            created += 1
        elif await _update_faq(
            session, actor=actor, entry=kept, data={"alternatives": [], "language": None, **item}
        ):
            updated += 1
    await _record_faq_import(
        session,
        actor,
        inbox_id,
        {"added": created, "updated": updated, "deleted": len(missing), "replace": True},
    )
    return FaqReplaced(
        created=created,
        updated=updated,
        unchanged=len(matched) - created - updated,
        deleted=len(missing),
    )


async def do_update_faq(
    session: AsyncSession, *, actor: Actor, entry: FaqEntry, data: dict[str, Any]
) -> FaqEntry:
    """Change any fields (``inbox_id`` moves it; None: shared). Editing is reviewing."""
    await _update_faq(session, actor=actor, entry=entry, data=data)
    return entry


async def _update_faq(
    session: AsyncSession, *, actor: Actor, entry: FaqEntry, data: dict[str, Any]
) -> bool:
    """``do_update_faq``; whether anything changed."""
    values = _faq_values(data)
    if "inbox_id" in data:
        values["inbox_id"] = data["inbox_id"]
    changes = {
        key: {"before": getattr(entry, key), "after": value}
        for key, value in values.items()
        if getattr(entry, key) != value
    }
    if not changes:
        return False
    before_inbox = entry.inbox_id
    for key, value in values.items():
        setattr(entry, key, value)
    entry.updated_at = entry.last_reviewed_at = utcnow()
    await record(session, actor, "faq.update", "faq_entry", entry.id, changes)
    _faq_changed(session, before_inbox, entry.inbox_id)
    return True


async def do_delete_faq(session: AsyncSession, *, actor: Actor, entry: FaqEntry) -> None:
    await record(
        session,
        actor,
        "faq.delete",
        "faq_entry",
        entry.id,
        {"inbox_id": entry.inbox_id, "question": entry.question},
    )
    await session.delete(entry)
    _faq_changed(session, entry.inbox_id)


async def do_mark_faq_reviewed(session: AsyncSession, *, actor: Actor, entry: FaqEntry) -> FaqEntry:
    entry.last_reviewed_at = utcnow()
    await record(session, actor, "faq.review", "faq_entry", entry.id)
    return entry


async def do_count_faq(
    session: AsyncSession,
    *,
    faq_id: int,
    matches: int = 1,
    answered: int,
    handed_off: int,
    at: datetime,
) -> None:
    """Matches of an entry (by the automation worker, in its jobs' transaction, summed over
    a round): the entry's totals and its day's counters (the hit rate over time)."""
    m, a, h = matches, answered, handed_off
    counted = await session.execute(
        update(FaqEntry)
        .where(FaqEntry.id == faq_id)
        .values(
            matches=FaqEntry.matches + m,
            answered=FaqEntry.answered + a,
            handed_off=FaqEntry.handed_off + h,
            last_matched_at=at,
        )
    )
    if cast(CursorResult[Any], counted).rowcount != 1:
        return  # deleted meanwhile: the reply still goes out, nothing to count
    insert = insert_for(session.bind.dialect.name)
    statement = insert(FaqDay).values(
        faq_id=faq_id, day=at.date(), matches=m, answered=a, handed_off=h
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["faq_id", "day"],
            set_={
                "matches": FaqDay.matches + m,
                "answered": FaqDay.answered + a,
                "handed_off": FaqDay.handed_off + h,
            },
        )
    )


# ------------------------------------------------------------------ quick replies


def _quick_reply_values(data: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "shortcut" in data:
        shortcut = str(data["shortcut"] or "").strip().lstrip("/").lower()
        if not SHORTCUT.match(shortcut):
            raise AutomationInvalid(
                "invalid_shortcut",
                "A shortcut is lower-case letters, digits, - and _ (like refund).",
                "shortcut",
            )
        clean["shortcut"] = shortcut
    if "title" in data:
        title = str(data["title"] or "").strip()
        if not title or len(title) > 200:
            raise AutomationInvalid("invalid_title", "A title of 1 to 200 characters.", "title")
        clean["title"] = title
    if "text" in data:
        text = str(data["text"] or "")
        if not text.strip() or len(text) > 4096:
            raise AutomationInvalid("invalid_text", "A text of 1 to 4,096 characters.", "text")
        clean["text"] = text
    if "media_link" in data:
        link = data["media_link"] or None
        if link is not None and not str(link).startswith("https://"):
            raise AutomationInvalid("invalid_media", "media_link is an https:// URL.", "media_link")
        clean["media_link"] = link
    return clean


async def _shortcut_taken(
    session: AsyncSession, inbox_id: int | None, shortcut: str, except_id: int | None = None
) -> bool:
    query = select(QuickReply.id).where(QuickReply.shortcut == shortcut)
    query = query.where(
        QuickReply.inbox_id.is_(None) if inbox_id is None else QuickReply.inbox_id == inbox_id
    )
    if except_id is not None:
        query = query.where(QuickReply.id != except_id)
    return (await session.scalar(query.limit(1))) is not None


async def do_create_quick_reply(
    session: AsyncSession, *, actor: Actor, inbox_id: int | None, data: dict[str, Any]
) -> QuickReply:
    values = _quick_reply_values({"title": data.get("title") or data.get("shortcut"), **data})
    if not {"shortcut", "text"} <= set(values):
        raise AutomationInvalid("invalid_quick_reply", "A quick reply needs a shortcut and a text.")
    if await _shortcut_taken(session, inbox_id, values["shortcut"]):
        raise AutomationInvalid(
            "shortcut_taken", f"/{values['shortcut']} exists already here.", "shortcut", 409
        )
    reply = QuickReply(inbox_id=inbox_id, usage_count=0, **values)
    session.add(reply)
    await session.flush()
    await record(
        session,
        actor,
        "quick_reply.create",
        "quick_reply",
        reply.id,
        {"inbox_id": inbox_id, **values},
    )
    return reply


async def do_update_quick_reply(
    session: AsyncSession, *, actor: Actor, reply: QuickReply, data: dict[str, Any]
) -> QuickReply:
    values = _quick_reply_values(data)
    if "shortcut" in values and await _shortcut_taken(
        session, reply.inbox_id, values["shortcut"], reply.id
    ):
        raise AutomationInvalid(
            "shortcut_taken", f"/{values['shortcut']} exists already here.", "shortcut", 409
        )
    for key, value in values.items():
        setattr(reply, key, value)
    reply.updated_at = utcnow()
    await record(session, actor, "quick_reply.update", "quick_reply", reply.id, values)
    return reply


async def do_delete_quick_reply(session: AsyncSession, *, actor: Actor, reply: QuickReply) -> None:
    await record(
        session, actor, "quick_reply.delete", "quick_reply", reply.id, {"shortcut": reply.shortcut}
    )
    await session.delete(reply)


async def do_count_quick_reply_use(session: AsyncSession, *, reply: QuickReply) -> None:
    await session.execute(
        update(QuickReply)
        .where(QuickReply.id == reply.id)
        .values(usage_count=QuickReply.usage_count + 1)
    )


# ------------------------------------------------------------------ message templates


def _parse_templates(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parsed: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or not item.get("name") or not item.get("language"):
            continue
        parsed.append(
            {
                "external_id": str(item.get("id") or "")[:64] or None,
                "name": str(item["name"])[:512],
                "language": str(item["language"])[:16],
                "category": str(item.get("category") or "UTILITY")[:30],
                "status": str(item.get("status") or "PENDING")[:30],
                "components": item.get("components")
                if isinstance(item.get("components"), list)
                else [],
                "rejected_reason": (
                    str(item["rejected_reason"])[:200] if item.get("rejected_reason") else None
                ),
            }
        )
    return parsed


async def do_store_templates(
    session: AsyncSession, *, actor: Actor, inbox_id: int, items: list[dict[str, Any]]
) -> dict[str, int]:
    """Replace an inbox's templates by what the Graph API listed."""
    fresh = {(t["name"], t["language"]): t for t in _parse_templates(items)}
    existing = {
        (t.name, t.language): t
        for t in (
            await session.scalars(
                select(MessageTemplate).where(MessageTemplate.inbox_id == inbox_id)
            )
        ).all()
    }
    now = utcnow()
    created = updated = 0
    for key, values in fresh.items():
        current = existing.get(key)
        if current is None:
            session.add(MessageTemplate(inbox_id=inbox_id, synced_at=now, **values))
            created += 1
        else:
            for field_name, value in values.items():
                setattr(current, field_name, value)
            current.synced_at = now
            updated += 1
    gone = [t.id for key, t in existing.items() if key not in fresh]
    if gone:
        await session.execute(delete(MessageTemplate).where(MessageTemplate.id.in_(gone)))
    counts = {"created": created, "updated": updated, "removed": len(gone)}
    await record(session, actor, "message_templates.sync", "inbox", inbox_id, counts)
    return counts


TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")


def template_submission(data: dict[str, Any]) -> dict[str, Any]:
    """Check a new template before it goes to the Graph API."""
    name = str(data.get("name") or "")
    if not TEMPLATE_NAME.match(name):
        raise AutomationInvalid(
            "invalid_name", "A template name is lower-case letters, digits and _.", "name"
        )
    language = str(data.get("language") or "")
    if not LANGUAGE.match(language):
        raise AutomationInvalid("invalid_language", "language is like en_US or fr.", "language")
    category = str(data.get("category") or "").upper()
    if category not in CATEGORIES:
        raise AutomationInvalid(
            "invalid_category", f"category is one of {', '.join(CATEGORIES)}.", "category"
        )
    body = str(data.get("body") or "")
    if not body.strip() or len(body) > 1024:
        raise AutomationInvalid("invalid_body", "The body is 1 to 1,024 characters.", "body")
    components: list[dict[str, Any]] = []
    header = str(data.get("header") or "")
    if header:
        components.append({"type": "HEADER", "format": "TEXT", "text": header[:60]})
    body_component: dict[str, Any] = {"type": "BODY", "text": body}
    examples = data.get("examples") or []
    if examples:
        body_component["example"] = {"body_text": [[str(e) for e in examples]]}
    components.append(body_component)
    footer = str(data.get("footer") or "")
    if footer:
        components.append({"type": "FOOTER", "text": footer[:60]})
    buttons = [str(b)[:25] for b in data.get("buttons") or [] if str(b).strip()]
    if buttons:
        components.append(
            {
                "type": "BUTTONS",
                "buttons": [{"type": "QUICK_REPLY", "text": b} for b in buttons[:3]],
            }
        )
    return {"name": name, "language": language, "category": category, "components": components}


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ------------------------------------------------------------------ a rule's assign_team


async def do_assign_team(
    session: AsyncSession, *, actor: Actor, conversation: Conversation, team: Team
) -> bool:
    """Give the conversation to ``team``: routing's facts and its queue entry take the team, so
    routing assigns it within the team (``drain``). Routing has no action of its own for
    changing a conversation's team after its first routing (its rules decide it at ingest),
    so this one keeps routing's tables consistent the way routing does. False: already so."""
    from wadesk.routing import actions as routing
    from wadesk.routing.models import ConversationRouting, QueueEntry
    from wadesk.routing.rules import PRIORITY_RANK

    facts = await session.get(ConversationRouting, conversation.id)
    before = facts.team_id if facts is not None else None
    if before == team.id:
        return False
    if facts is None:
        session.add(
            ConversationRouting(
                conversation_id=conversation.id,
                team_id=team.id,
                tags=[],
                matched_rules=[],
                evaluated_at=utcnow(),
            )
        )
    else:
        facts.team_id = team.id
    await session.flush()
    waiting = conversation.assignee_id is None and conversation.status != "resolved"
    queued = False
    if waiting:
        moved = cast(
            CursorResult[Any],
            await session.execute(
                update(QueueEntry)
                .where(QueueEntry.conversation_id == conversation.id)
                .values(team_id=team.id)
            ),
        )
        queued = moved.rowcount > 0
        if not queued and (await routing.inbox_settings(session, conversation.inbox_id)).enabled:
            await routing.enqueue(
                session,
                [
                    {
                        "conversation_id": conversation.id,
                        "inbox_id": conversation.inbox_id,
                        "team_id": team.id,
                        "language": facts.language if facts is not None else None,
                        "sticky_user_id": None,
                        "rank": PRIORITY_RANK.get(conversation.priority, 0),
                        "enqueued_at": conversation.created_at,
                    }
                ],
            )
            queued = True
    await record(
        session,
        actor,
        "conversation.team",
        "conversation",
        conversation.id,
        {"before": before, "after": team.id, "team": team.name},
    )
    queue_event(
        session,
        "conversation.updated",
        {
            "conversation_id": conversation.id,
            "inbox_id": conversation.inbox_id,
            "changes": ["team_id"],
        },
    )
    if queued:
        queue_event(
            session, "routing.queue_changed", {"inbox_ids": [conversation.inbox_id], "queued": 1}
        )
        await routing.drain(session, reason="team_changed")
    return True
