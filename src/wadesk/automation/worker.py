"""Run automation jobs: claim with a lease, decide (rules, greeting, away), call integrations
outside any transaction, then apply the effects and mark the job done in one transaction.

- A job is queued in the transaction that stored its message (conversations/hooks.py), so a
  crash never loses a trigger; the effects (replies in the outbox, labels, notes) commit
  together with ``state = 'done'``, so a job whose worker died is re-run, never half-applied.
- Jobs of one conversation run one at a time and in order (a pending question must see the
  previous answer).
- Loop protection: only customer messages queue jobs; an inbound text equal to our last
  automated reply (an echo) is ignored; at most ``MAX_REPLIES_PER_WINDOW`` automated replies
  per customer in ten minutes; a conversation a person took over (assigned, or a person
  replied) is left alone unless the rule says ``after_handoff``.
- A "waiting" job (queued by ``automation/waiting.py``'s sweep) runs only the rule it was
  queued for, and only if the customer still waits for a reply (``_still_waiting``).
- The FAQ bot (``automation/faq.py``) only looks at a customer message no rule answered and
  that answers no pending question, with the same protections (see ``_prepare_faq``).
- Guided flows (``automation/flows.py``): a customer message in a conversation that is in a
  flow goes to the flow and nothing else; an expired flow state, or a conversation a person
  took over, ends the flow and the message is handled as usual. A flow starts from a rule's
  ``start_flow`` action or, when no rule answers, from one of the flow's keywords.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import structlog
from sqlalchemy import (
    JSON,
    CursorResult,
    Table,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.models import InboxMember
from wadesk.automation import semantic
from wadesk.automation.actions import (
    AUTOMATION_ACTOR,
    FAQ_CHANGED,
    QUEUED,
    RULES_CHANGED,
    do_assign_team,
    do_count_faq,
)
from wadesk.automation.engine import (
    Buttons,
    CompiledRule,
    Effects,
    Facts,
    IntegrationSpec,
    ListMessage,
    RuleSet,
    TriggerRules,
    compile_rules,
    evaluate,
    keyword_words,
    run_rule,
)
from wadesk.automation.faq import NEAR_MISS, FaqDecision, FaqIndex, compile_faq, decide
from wadesk.automation.flows import FlowSpec, FlowTurn, advance, start
from wadesk.automation.hours import Hours, describe, is_open, next_opening, parse_hours
from wadesk.automation.models import (
    AutomationContactState,
    AutomationJob,
    AutomationRule,
    FaqEntry,
    Flow,
    FlowState,
    FlowVersion,
    InboxAutomation,
    Integration,
    QuickReply,
)
from wadesk.automation.text import normalise, render
from wadesk.background import BackgroundLoop
from wadesk.claims import lease_update
from wadesk.config import Settings
from wadesk.contacts.models import Contact
from wadesk.conversations.actions import (
    SendRefused,
    SendRequest,
    do_add_note,
    do_send_messages,
    do_update_conversation,
)
from wadesk.conversations.models import Conversation, ConversationLabel, Label, Message
from wadesk.db import Database, insert_for, queue_event, utcnow
from wadesk.groupcommit import GroupCommit, in_session
from wadesk.httpclient import HttpClient
from wadesk.inboxes.models import Inbox
from wadesk.pgarrays import among

log = structlog.get_logger(__name__)

LEASE_SECONDS = 30.0
MAX_ATTEMPTS = 5
BATCH = 100
REPLY_WINDOW = timedelta(minutes=10)
MAX_REPLIES_PER_WINDOW = 10
GREETING_REPEAT = timedelta(hours=24)
RECHECK_SECONDS = 0.05


# The claim's and the read-back's statements, built once: building a statement and its cache
# key costs about as much client CPU as running it (bench/roundtrip.py: 544 against 300 us).
_DUE = (
    select(AutomationJob.id, AutomationJob.conversation_id)
    .where(
        text("automation_jobs.state = 'pending'"),
        AutomationJob.next_attempt_at <= bindparam("now"),
    )
    .order_by(AutomationJob.id)
    .limit(bindparam("limit"))
)
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)
_OLDEST = (
    select(AutomationJob.conversation_id, func.min(AutomationJob.id))
    .where(AutomationJob.state == "pending", among(AutomationJob.conversation_id))
    .group_by(AutomationJob.conversation_id)
)
_LEASE = (
    lease_update(AutomationJob)
    .returning(AutomationJob)
    .execution_options(populate_existing=True, synchronize_session=False)
)
_CONVERSATIONS = select(Conversation).where(among(Conversation.id))
_MESSAGES = select(Message).where(among(Message.id))
_CONTACTS = select(Contact).where(among(Contact.id))
_INBOXES = select(Inbox).where(among(Inbox.id))
_SETTINGS = select(InboxAutomation).where(among(InboxAutomation.inbox_id))
_STATES = select(AutomationContactState).where(
    among(AutomationContactState.contact_id), among(AutomationContactState.inbox_id, "inbox_ids")
)
_FLOW_STATES = select(FlowState).where(among(FlowState.conversation_id))
# A person replied (notes do not count): the conversation is theirs.
_HUMAN = (
    select(Message.conversation_id)
    .where(
        among(Message.conversation_id),
        Message.direction == "out",
        Message.sender_user_id.is_not(None),
        Message.status != "note",
    )
    .distinct()
)


@dataclass(slots=True)
class Prepared:
    job_id: int
    inbox_id: int
    conversation_id: int
    contact_id: int
    trigger: str
    rule: CompiledRule | None = None
    start: int = 0
    new_match: bool = False
    context: dict[str, Any] = field(default_factory=dict)
    greeting: str | None = None
    away: str | None = None
    clear_pending: bool = False
    skipped: str | None = None
    quick_replies: dict[str, str] = field(default_factory=dict)
    # The FAQ bot's decision, its rendered answer or note, and the entry to count (if any).
    faq: FaqDecision | None = None
    faq_reply: str | None = None
    faq_note: str | None = None
    faq_count_id: int | None = None
    # A "waiting" job: the rule it was queued for (automation.actions.queue_waiting_jobs).
    waiting_rule_id: int | None = None
    taken_over: bool = False
    # Guided flows: the inbox's enabled flows (for start_flow), the flow this message
    # advances or starts (flow_new) and what it does; a flow state to end (flow id, why).
    flows: dict[int, FlowSpec] = field(default_factory=dict)
    flow_spec: FlowSpec | None = None
    flow_turn: FlowTurn | None = None
    flow_new: bool = False
    flow_end: tuple[int, str] | None = None


@dataclass(slots=True)
class InboxFlows:
    """An inbox's enabled flows (current versions) and the keywords that start them."""

    by_id: dict[int, FlowSpec] = field(default_factory=dict)
    triggers: list[tuple[tuple[str, ...], FlowSpec]] = field(default_factory=list)

    def triggered_by(self, words: list[str]) -> FlowSpec | None:
        for keyword, spec in self.triggers:
            for start_at in range(len(words) - len(keyword) + 1):
                if tuple(words[start_at : start_at + len(keyword)]) == keyword:
                    return spec
        return None


@dataclass(slots=True)
class Decided:
    prepared: Prepared
    effects: Effects
    elapsed_ms: float = 0.0


def first_name(name: str | None) -> str:
    return (name or "").strip().split(" ")[0] if name else ""


class AutomationWorker(BackgroundLoop):
    name = "automation.worker"
    idle_seconds = 2.0

    def __init__(self, db: Database, settings: Settings, http: HttpClient) -> None:
        super().__init__()
        self._db = db
        self._settings = settings
        self._http = http
        self.owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._rules: dict[int, RuleSet] = {}
        self._compiled: dict[int, tuple[Any, CompiledRule]] = {}  # rule id -> (updated_at, rule)
        self._integrations: dict[str, IntegrationSpec] | None = None
        self._faq: dict[int, FaqIndex] = {}
        self._flows: dict[int, InboxFlows] = {}
        self._flow_versions: dict[tuple[int, int], FlowSpec] = {}  # never change once saved
        # Decided jobs are applied with group commit: those decided while a transaction is
        # in flight are applied together in the next one (a few statements per round
        # instead of a dozen per job); a round that fails is retried job by job, alone.
        self._group = GroupCommit(in_session(db, self._apply_batch), max_items=BATCH)
        self._alone = asyncio.Lock()
        self._held_back = False  # the last claim left a due job behind its conversation's
        self._in_flight: set[asyncio.Task[None]] = set()  # jobs claimed, not yet applied

    # ------------------------------------------------------------ events

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == QUEUED:
            self.wake()
        elif kind == RULES_CHANGED:
            inbox_id = payload.get("inbox_id")
            if inbox_id is None:
                self._rules.clear()
                self._flows.clear()
                self._integrations = None
            else:
                self._rules.pop(int(inbox_id), None)
                self._flows.pop(int(inbox_id), None)
        elif kind == FAQ_CHANGED:
            inbox_id = payload.get("inbox_id")
            if inbox_id is None:
                self._faq.clear()
            else:
                self._faq.pop(int(inbox_id), None)

    # ------------------------------------------------------------ the loop

    async def run_forever(self) -> None:
        try:
            await super().run_forever()
        finally:
            # Stopped or cancelled: jobs cut off mid-way stay leased and run again later.
            for task in self._in_flight:
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def run_once(self) -> int:
        """Claim what is due and start deciding it, without waiting for the jobs claimed
        before to finish: a job queued while others wait for an integration or a commit is
        claimed at once, not after the slowest of them (at most ``BATCH`` in flight)."""
        if len(self._in_flight) >= BATCH:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
        room = BATCH - len(self._in_flight)
        prepared = await self._claim_and_prepare(room)
        for item in prepared:
            task = asyncio.create_task(self._decide_and_apply(item))
            self._in_flight.add(task)
            task.add_done_callback(self._job_finished)
        if not prepared and not self._held_back:
            return 0
        if len(prepared) >= room:
            return len(prepared)  # more may be due now: at once
        # A partial batch: a job queued meanwhile wakes the loop; one queued in another
        # process (or held back behind its conversation's job another process runs) is
        # looked for soon.
        self.recheck_soon(RECHECK_SECONDS)
        return 0

    async def wait_in_flight(self) -> None:
        """Until every job claimed so far is applied (or left for a retry)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _job_finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # A bug in deciding a job: it stays leased and runs again after the lease.
            log.error("automation.job_error", exc_info=error)
        if self._held_back:
            self.wake()  # the job a later one of its conversation waited for may be done

    async def _decide_and_apply(self, item: Prepared) -> None:
        decided = await self._decide(item)
        try:
            await self._group.submit(decided)
            return
        except Exception:
            log.warning("automation.round_failed", job_id=item.job_id, exc_info=True)
        async with self._alone:
            try:
                async with self._db.session() as session:
                    await self._apply_batch(session, [decided])
            except Exception:
                # Left pending: retried after the lease, up to MAX_ATTEMPTS.
                log.exception("automation.apply_failed", job_id=item.job_id)

    async def ruleset(self, session: AsyncSession, inbox_id: int) -> RuleSet:
        cached = self._rules.get(inbox_id)
        if cached is None:
            rows = (
                await session.scalars(
                    select(AutomationRule).where(
                        AutomationRule.inbox_id == inbox_id, AutomationRule.enabled.is_(True)
                    )
                )
            ).all()
            cached = compile_rules(rows, self._compiled)
            self._rules[inbox_id] = cached
        return cached

    async def inbox_flows(self, session: AsyncSession, inbox_id: int) -> InboxFlows:
        """The inbox's enabled flows, loaded once until a flow or rule of it changes."""
        cached = self._flows.get(inbox_id)
        if cached is None:
            cached = InboxFlows()
            rows = (
                await session.scalars(
                    select(Flow)
                    .where(Flow.inbox_id == inbox_id, Flow.enabled.is_(True))
                    .order_by(Flow.id)
                )
            ).all()
            for row in rows:
                spec = FlowSpec(row.id, row.name, row.version, dict(row.definition or {}))
                cached.by_id[row.id] = spec
                for keyword in spec.definition.get("keywords", []):
                    if words := keyword_words(keyword):
                        cached.triggers.append((words, spec))
            self._flows[inbox_id] = cached
        return cached

    async def _flow_version(
        self, session: AsyncSession, flows: InboxFlows, flow_id: int, version: int
    ) -> FlowSpec | None:
        """The version a conversation started on (None: the flow is gone or disabled)."""
        current = flows.by_id.get(flow_id)
        if current is None or current.version == version:
            return current
        cached = self._flow_versions.get((flow_id, version))
        if cached is None:
            row = await session.get(FlowVersion, (flow_id, version))
            if row is None:
                return None
            if len(self._flow_versions) > 1000:
                self._flow_versions.clear()
            cached = FlowSpec(flow_id, current.name, version, dict(row.definition or {}))
            self._flow_versions[(flow_id, version)] = cached
        return cached

    async def faq_index(self, session: AsyncSession, inbox_id: int) -> FaqIndex:
        """The inbox's own and the shared FAQ entries, compiled once until one changes (in a
        thread: with the semantic matcher, new phrasings are embedded, 10-25 ms each)."""
        cached = self._faq.get(inbox_id)
        if cached is None:
            rows = (
                await session.scalars(
                    select(FaqEntry).where(
                        (FaqEntry.inbox_id == inbox_id) | FaqEntry.inbox_id.is_(None),
                        FaqEntry.enabled.is_(True),
                    )
                )
            ).all()
            embedder = await asyncio.to_thread(semantic.embedder)
            cached = await asyncio.to_thread(compile_faq, rows, embedder)
            self._faq[inbox_id] = cached
        return cached

    async def _integration_specs(self, session: AsyncSession) -> dict[str, IntegrationSpec]:
        if self._integrations is None:
            rows = (await session.scalars(select(Integration))).all()
            self._integrations = {
                row.name: IntegrationSpec(
                    name=row.name,
                    url=row.url,
                    method=row.method,
                    headers=dict(row.headers or {}),
                    secret_header=row.secret_header,
                    secret=row.secret,
                    timeout_seconds=row.timeout_seconds,
                )
                for row in rows
            }
        return self._integrations

    async def _claim(self, session: AsyncSession, limit: int = BATCH) -> list[AutomationJob]:
        now = utcnow()
        due = _DUE if self._db.is_sqlite else _DUE_LOCKED
        candidates = (await session.execute(due, {"now": now, "limit": limit})).tuples().all()
        if not candidates:
            return []
        conversations = sorted({c for _, c in candidates})
        # Only each conversation's oldest pending job: they run one at a time, in order.
        oldest = dict((await session.execute(_OLDEST, {"ids": conversations})).tuples().all())
        ids = [jid for jid, conv in candidates if oldest.get(conv) == jid]
        self._held_back = len(ids) < len(candidates)
        if not ids:
            return []
        lease = now + timedelta(seconds=LEASE_SECONDS)
        # The leased rows come back with the UPDATE (one statement on the reply's path).
        leased = await session.scalars(_LEASE, {"ids": ids, "lease": lease, "owner": self.owner})
        jobs = sorted(leased.all(), key=lambda job: job.id)
        failed = [job for job in jobs if job.attempts > MAX_ATTEMPTS]
        for job in failed:
            job.state, job.done_at = "failed", now
            job.outcome = {"error": "gave up after repeated errors"}
            log.warning("automation.job_failed", job_id=job.id)
        return [job for job in jobs if job.attempts <= MAX_ATTEMPTS]

    async def _claim_and_prepare(self, limit: int = BATCH) -> list[Prepared]:
        async with self._db.session() as session:
            jobs = await self._claim(session, limit)
            if not jobs:
                return []
            return await self._prepare(session, jobs)

    async def _prepare(self, session: AsyncSession, jobs: list[AutomationJob]) -> list[Prepared]:
        now = utcnow()
        conversation_ids = sorted({j.conversation_id for j in jobs})
        conversations = {
            c.id: c for c in (await session.scalars(_CONVERSATIONS, {"ids": conversation_ids}))
        }
        message_ids = [j.message_id for j in jobs if j.message_id is not None]
        messages = {m.id: m for m in (await session.scalars(_MESSAGES, {"ids": message_ids}))}
        contact_ids = sorted({c.contact_id for c in conversations.values()})
        contacts = {c.id: c for c in (await session.scalars(_CONTACTS, {"ids": contact_ids}))}
        inbox_ids = sorted({j.inbox_id for j in jobs})
        inboxes = {i.id: i for i in (await session.scalars(_INBOXES, {"ids": inbox_ids}))}
        settings = {s.inbox_id: s for s in (await session.scalars(_SETTINGS, {"ids": inbox_ids}))}
        states = {
            (s.inbox_id, s.contact_id): s
            for s in (await session.scalars(_STATES, {"ids": contact_ids, "inbox_ids": inbox_ids}))
        }
        inbox_flows = {i: await self.inbox_flows(session, i) for i in inbox_ids}
        flow_states: dict[int, FlowState] = {}
        if any(f.by_id for f in inbox_flows.values()):
            flow_states = {
                s.conversation_id: s
                for s in (await session.scalars(_FLOW_STATES, {"ids": list(conversations)}))
            }
        human = set(await session.scalars(_HUMAN, {"ids": list(conversations)}))
        hours = {
            inbox_id: parse_hours(s.timezone, s.schedule, s.holidays)
            for inbox_id, s in settings.items()
        }
        prepared: list[Prepared] = []
        shortcuts: dict[int, set[str]] = {}
        candidates: list[frozenset[str]] = []  # routing's configured languages, read once
        for job in jobs:
            conversation = conversations.get(job.conversation_id)
            if conversation is None:
                continue
            contact = contacts.get(conversation.contact_id)
            inbox = inboxes.get(job.inbox_id)
            message = messages.get(job.message_id) if job.message_id is not None else None
            item = Prepared(
                job_id=job.id,
                inbox_id=job.inbox_id,
                conversation_id=conversation.id,
                contact_id=conversation.contact_id,
                trigger=job.trigger,
            )
            if job.trigger == "waiting":
                rule_id = (job.outcome or {}).get("waiting_rule_id")
                item.waiting_rule_id = rule_id if isinstance(rule_id, int) else None
            prepared.append(item)
            if contact is None or inbox is None:
                item.skipped = "gone"
                continue
            inbox_hours = hours.get(inbox.id, Hours())
            open_now = is_open(inbox_hours, now)
            attributes = dict(contact.attributes or {})
            contact_data = {
                **{k: v for k, v in attributes.items() if isinstance(k, str)},
                "name": contact.name or "",
                "first_name": first_name(contact.name),
                "phone": contact.phone_e164 or "",
            }
            item.context = {
                "contact": contact_data,
                "message": {"text": (message.text if message else "") or ""},
                "inbox": {"name": inbox.name},
                "hours": {
                    "open": open_now,
                    "next_opening": describe(inbox_hours, next_opening(inbox_hours, now)),
                },
                "match": {},
            }
            taken_over = conversation.assignee_id is not None or conversation.id in human
            state = states.get((inbox.id, contact.id))
            text_in = (message.text if message else None) or ""
            if job.trigger == "waiting" and not await self._still_waiting(
                session, conversation, job.message_id
            ):
                item.skipped = "no longer waiting"
                continue
            if job.trigger in ("message", "waiting") and state is not None:
                if (
                    job.trigger == "message"
                    and state.last_reply_text
                    and text_in
                    and normalise(text_in) == normalise(state.last_reply_text)
                ):
                    item.skipped = "echo of our own reply"
                    continue
                if (
                    state.replies_window_at is not None
                    and state.replies_window_at > now - REPLY_WINDOW
                    and state.replies_in_window >= MAX_REPLIES_PER_WINDOW
                ):
                    item.skipped = "loop guard: too many automated replies"
                    continue
            item.taken_over = taken_over
            flows = inbox_flows.get(inbox.id, InboxFlows())
            item.flows = flows.by_id
            # 0. A conversation in a flow: the flow has the message, unless it timed out or a
            # person took over (then the flow ends and the message is handled as usual).
            flow_state = flow_states.get(conversation.id)
            if flow_state is not None and job.trigger == "message":
                spec = await self._flow_version(
                    session, flows, flow_state.flow_id, flow_state.version
                )
                if flow_state.expires_at <= now:
                    item.flow_end = (flow_state.flow_id, "timed_out")
                elif taken_over or spec is None:
                    item.flow_end = (flow_state.flow_id, "taken_over" if taken_over else "gone")
                else:
                    content = message.content if message is not None else None
                    reply_id = (
                        content.get("id")
                        if isinstance(content, dict) and isinstance(content.get("id"), str)
                        else None
                    )
                    item.flow_spec = spec
                    item.flow_turn = advance(
                        spec, flow_state.step, flow_state.retries, text_in, reply_id, item.context
                    )
                    continue
            rules = await self.ruleset(session, inbox.id)
            language = (
                await self._language(session, rules, text_in, candidates)
                if rules.languages and text_in.strip()
                else None
            )
            facts = Facts.of(text_in, contact_data, inbox.channel_type, open_now, language)
            # 1. An answer to a question a rule asked.
            pending_live = False
            if job.trigger == "message" and state is not None and state.pending_rule_id is not None:
                item.clear_pending = True
                pending_rule = rules.by_id.get(state.pending_rule_id)
                data = dict(state.pending_data or {})
                capture, pattern = data.pop("__capture", ""), data.pop("__pattern", "")
                live = state.pending_until is not None and state.pending_until > now
                pending_live = live
                if (
                    pending_rule is not None
                    and live
                    and capture
                    and (not taken_over or pending_rule.after_handoff)
                ):
                    answer = re.search(pattern, text_in, re.IGNORECASE)
                    if answer is not None:
                        data[capture] = answer.group(0)
                        item.rule, item.start = pending_rule, (state.pending_step or 0) + 1
                        item.context["match"] = data
            # 2. The rules of the trigger(s), first match wins.
            if job.trigger == "waiting":
                chosen = self._waiting_rule(rules, item.waiting_rule_id, facts, taken_over)
                if chosen is not None:
                    item.rule, item.context["match"] = chosen
                    item.new_match = True
            elif item.rule is None:
                chosen = None
                if job.opened:
                    chosen = evaluate(rules, "opened", facts, taken_over=taken_over)
                if chosen is None:
                    chosen = evaluate(rules, job.trigger, facts, taken_over=taken_over)
                if chosen is not None:
                    item.rule, captures = chosen
                    item.context["match"] = captures
                    item.new_match = True
            if item.rule is not None:
                for action in item.rule.actions:
                    if action["type"] == "quick_reply":
                        shortcuts.setdefault(inbox.id, set()).add(action["shortcut"])
            # 2a. No rule, no question pending: a flow's keyword starts it.
            elif (
                job.trigger == "message"
                and not pending_live
                and not taken_over
                and (spec := flows.triggered_by(facts.words)) is not None
            ):
                item.flow_spec, item.flow_new = spec, True
                item.flow_turn = start(spec, item.context)
            # 2b. No rule, no question pending: the FAQ bot.
            inbox_settings = settings.get(inbox.id)
            if (
                job.trigger == "message"
                and item.rule is None
                and item.flow_turn is None
                and not pending_live
                and not taken_over
                and inbox_settings is not None
                and inbox_settings.faq_enabled
            ):
                await self._prepare_faq(session, item, text_in, inbox_settings.faq_threshold)
            # 3. Greeting and away message.
            if job.trigger == "message" and inbox_settings is not None and not taken_over:
                if inbox_settings.greeting_enabled and job.opened:
                    recent = (
                        state is not None
                        and state.last_greeting_at is not None
                        and (state.last_greeting_at > now - GREETING_REPEAT)
                    )
                    if not recent and await self._silent_long_enough(
                        session, conversation, job.message_id, inbox_settings.greeting_after_days
                    ):
                        item.greeting = render(inbox_settings.greeting_text, item.context)
                if inbox_settings.away_enabled:
                    recent = (
                        state is not None
                        and state.last_away_at is not None
                        and (state.last_away_at > now - GREETING_REPEAT)
                    )
                    if not recent and (
                        not open_now or await self._nobody_online(session, inbox.id)
                    ):
                        item.away = render(inbox_settings.away_text, item.context)
        for inbox_id, names in shortcuts.items():
            rows = (
                await session.scalars(
                    select(QuickReply)
                    .where(
                        QuickReply.shortcut.in_(names),
                        (QuickReply.inbox_id == inbox_id) | QuickReply.inbox_id.is_(None),
                    )
                    .order_by(QuickReply.inbox_id.is_(None))
                )
            ).all()
            texts: dict[str, str] = {}
            for row in rows:
                texts.setdefault(row.shortcut, row.text)
            for item in prepared:
                if item.inbox_id == inbox_id:
                    item.quick_replies = texts
        if any(p.rule is not None for p in prepared):
            specs = await self._integration_specs(session)
            for item in prepared:
                item.context["__integrations"] = specs
        return prepared

    async def _prepare_faq(
        self, session: AsyncSession, item: Prepared, text_in: str, threshold: int
    ) -> None:
        """Score the message against the FAQ: answer at or above the threshold; a near miss
        (up to ``NEAR_MISS`` points below) or an unplaced question goes to a person with a
        note. The entry is counted only when it was a real candidate (answered or a near
        miss): a question scoring 12 % on its best entry says nothing about that entry."""
        if not text_in.strip():
            return
        try:
            index = await self.faq_index(session, item.inbox_id)
            decision = await asyncio.to_thread(decide, index, text_in, threshold)
        except Exception:
            # The message is stored and the rest of the job (rules, greeting) goes on; the
            # conversation simply waits for a person, as without the FAQ bot.
            log.exception("automation.faq_failed", job_id=item.job_id)
            return
        if not len(index):
            return
        best = decision.match
        if decision.kind == "answer" and best is not None:
            item.faq, item.faq_count_id = decision, best.entry.id
            item.faq_reply = render(best.entry.answer, item.context)
        elif decision.kind == "handoff":
            item.faq = decision
            if best is None:
                item.faq_note = "FAQ bot could not place this question."
            else:
                item.faq_note = (
                    f"FAQ bot was not sure: best match “{best.entry.question}” "
                    f"at {best.score:.0f}% (answers from {threshold}%)."
                )
                if best.score >= threshold - NEAR_MISS:
                    item.faq_count_id = best.entry.id

    async def _language(
        self,
        session: AsyncSession,
        rules: RuleSet,
        text_in: str,
        candidates: list[frozenset[str]],
    ) -> str | None:
        """The message's language for ``language`` conditions, with routing's detector
        (``routing/language.py``), among the rules' languages, routing's configured ones and
        English (so that an English message is not forced into the nearest rule language).
        None when the text is too short or the detector is not sure: the condition fails."""
        from wadesk.routing import language as lang
        from wadesk.routing.models import RoutingConfig

        if not candidates:
            config = await session.get(RoutingConfig, 1)
            candidates.append(frozenset(config.languages or []) if config else frozenset())
        codes = sorted(rules.languages | candidates[0] | {"en"})
        try:
            return await asyncio.to_thread(lang.detect, text_in, codes)
        except Exception:
            log.exception("automation.language_failed")
            return None

    @staticmethod
    def _waiting_rule(
        rules: RuleSet, rule_id: int | None, facts: Facts, taken_over: bool
    ) -> tuple[CompiledRule, dict[str, str]] | None:
        """The one waiting rule the job was queued for, if it is still an enabled waiting
        rule and its other conditions (keywords on the customer's last message, hours...)
        hold; the usual hand-off protection applies."""
        rule = rules.by_id.get(rule_id) if rule_id is not None else None
        if rule is None or rule.trigger != "waiting":
            return None
        group = TriggerRules()
        group.add(rule)
        return evaluate(
            RuleSet({"waiting": group}, {rule.id: rule}), "waiting", facts, taken_over=taken_over
        )

    async def _still_waiting(
        self, session: AsyncSession, conversation: Conversation, message_id: int | None
    ) -> bool:
        """The job's customer message is still the last one, the conversation is open and
        nobody (person or bot) replied since: a reply between queueing and running wins."""
        if conversation.status != "open" or message_id is None:
            return False
        last_in = await session.scalar(
            select(func.max(Message.id)).where(
                Message.conversation_id == conversation.id, Message.direction == "in"
            )
        )
        if last_in != message_id:
            return False
        replied = await session.scalar(
            select(
                exists().where(
                    Message.conversation_id == conversation.id,
                    Message.direction == "out",
                    Message.status.not_in(("note", "failed")),
                    Message.id > message_id,
                )
            )
        )
        return not replied

    async def _silent_long_enough(
        self,
        session: AsyncSession,
        conversation: Conversation,
        message_id: int | None,
        days: int,
    ) -> bool:
        """First contact, or the customer's previous message is older than ``days``."""
        query = (
            select(func.max(Message.created_at))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.inbox_id == conversation.inbox_id,
                Conversation.contact_id == conversation.contact_id,
                Message.direction == "in",
            )
        )
        if message_id is not None:
            query = query.where(Message.id < message_id)
        previous = await session.scalar(query)
        return previous is None or previous < utcnow() - timedelta(days=days)

    async def _nobody_online(self, session: AsyncSession, inbox_id: int) -> bool:
        """With routing's presence in use for this inbox: is every member away or offline?"""
        try:
            from wadesk.routing.models import AgentState
        except ImportError:  # pragma: no cover - routing not installed
            return False
        rows = (
            await session.scalars(
                select(AgentState.availability)
                .join(InboxMember, InboxMember.user_id == AgentState.user_id)
                .where(InboxMember.inbox_id == inbox_id)
            )
        ).all()
        return bool(rows) and "online" not in rows

    async def _decide(self, item: Prepared) -> Decided:
        started = time.perf_counter()
        specs = item.context.pop("__integrations", {})
        if item.skipped or item.rule is None:
            effects = Effects()
        else:
            effects = await run_rule(
                item.rule,
                start=item.start,
                context=item.context,
                http=self._http,
                integrations=specs,
                quick_replies=item.quick_replies,
            )
        if effects.start_flow is not None:
            spec = item.flows.get(effects.start_flow)
            if spec is None:
                effects.notes.append(
                    f"Automation rule “{item.rule.name if item.rule else ''}”: its flow no"
                    " longer exists or is disabled; it was not started."
                )
            elif not item.taken_over:  # a rule answering after a hand-off starts no flow
                item.flow_spec, item.flow_new = spec, True
                item.flow_turn = start(spec, item.context)
        if item.flow_turn is not None:
            effects.sends.extend(item.flow_turn.sends)
            if item.flow_turn.handoff_note:
                effects.handoff_notes.append(item.flow_turn.handoff_note)
            effects.trace.append(item.flow_turn.trace)
        if item.faq_reply:
            effects.sends.append(item.faq_reply)
        if item.faq_note:
            effects.handoff_notes.append(item.faq_note)
        if item.away:
            effects.sends.insert(0, item.away)
        if item.greeting:
            effects.sends.insert(0, item.greeting)
        return Decided(item, effects, (time.perf_counter() - started) * 1000)

    # ------------------------------------------------------------ applying

    async def _apply_batch(self, session: AsyncSession, batch: list[Decided]) -> None:
        """Apply decided jobs in one transaction: mark them done (those still leased to this
        worker), queue every reply with one ``do_send_messages``, then each job's other
        effects, and the rules' and FAQ entries' counters, summed, in id order (two rounds
        never wait on each other's counters in opposite orders)."""
        now = utcnow()
        batch = sorted(batch, key=lambda d: (d.prepared.conversation_id, d.prepared.job_id))
        outcomes = {d.prepared.job_id: self._outcome(d) for d in batch}
        query = (
            select(AutomationJob.id)
            .where(
                AutomationJob.id.in_(sorted(outcomes)),
                AutomationJob.lease_owner == self.owner,
                AutomationJob.state == "pending",
            )
            .order_by(AutomationJob.id)
        )
        if not self._db.is_sqlite:
            query = query.with_for_update()
        ours = set((await session.scalars(query)).all())
        # (the others: another worker took them over after our lease ran out)
        batch = [d for d in batch if d.prepared.job_id in ours]
        if not batch:
            return
        jobs = cast(Table, AutomationJob.__table__)
        await session.execute(
            update(jobs)
            .where(jobs.c.id == bindparam("job_id"))
            .values(state="done", done_at=now, outcome=bindparam("job_outcome")),
            [
                {"job_id": d.prepared.job_id, "job_outcome": outcomes[d.prepared.job_id]}
                for d in batch
            ],
        )
        conversations = {
            c.id: c
            for c in (
                await session.scalars(
                    select(Conversation)
                    .where(Conversation.id.in_(sorted({d.prepared.conversation_id for d in batch})))
                    .order_by(Conversation.id)
                )
            ).all()
        }
        batch = [d for d in batch if d.prepared.conversation_id in conversations]
        requests = [(d, self._requests(d)) for d in batch]
        results = iter(
            await do_send_messages(
                session,
                actor=AUTOMATION_ACTOR,
                sends=[
                    (conversations[d.prepared.conversation_id], request)
                    for d, planned in requests
                    for _, request in planned
                ],
                service_window_hours=self._settings.service_window_hours,
            )
        )
        rules: dict[int, list[int]] = {}  # rule id -> [matches, answered, handed off]
        states: list[dict[str, Any]] = []
        faqs: dict[int, list[int]] = {}  # entry id -> [matches, answered, handed off]
        for decided, planned in requests:
            item, effects = decided.prepared, decided.effects
            conversation = conversations[item.conversation_id]
            sent: list[str] = []
            refused: list[str] = []
            for body, _ in planned:
                result = next(results)
                if isinstance(result, SendRefused):
                    refused.append(result.code)
                else:
                    sent.append(body)
            if refused:
                outcome = outcomes[item.job_id]
                outcome["sent"], outcome["refused"] = len(sent), refused
                await session.execute(
                    update(AutomationJob)
                    .where(AutomationJob.id == item.job_id)
                    .values(outcome=outcome)
                )
            await self._apply_effects(session, conversation, effects)
            if (state := self._state_row(item, effects, sent, now)) is not None:
                states.append(state)
            await self._apply_flow(session, item, now)
            if item.faq_count_id is not None:
                counts = faqs.setdefault(item.faq_count_id, [0, 0, 0])
                counts[0] += 1
                counts[1] += (
                    item.faq_reply is not None
                    and item.faq_reply.strip()[:4096] in sent
                    and not effects.handed_off
                )
                counts[2] += item.faq_note is not None
            if effects.rule_id is not None:
                asked = effects.pending is not None
                counts = rules.setdefault(effects.rule_id, [0, 0, 0])
                counts[0] += item.new_match
                counts[1] += bool(sent) and not effects.handed_off and not asked
                counts[2] += effects.handed_off
        await self._update_states(session, states)
        for faq_id, (matches, answered, handed_off) in sorted(faqs.items()):
            await do_count_faq(
                session,
                faq_id=faq_id,
                matches=matches,
                answered=answered,
                handed_off=handed_off,
                at=now,
            )
        for rule_id, (matches, answered, handed_off) in sorted(rules.items()):
            await session.execute(
                update(AutomationRule)
                .where(AutomationRule.id == rule_id)
                .values(
                    matches=AutomationRule.matches + matches,
                    answered=AutomationRule.answered + answered,
                    handed_off=AutomationRule.handed_off + handed_off,
                    last_matched_at=now,
                )
            )

    @staticmethod
    def _outcome(decided: Decided) -> dict[str, Any]:
        """What the job did, for ``automation_jobs.outcome`` (the replies counted as planned:
        ``_apply_batch`` corrects it only if a send is refused)."""
        item, effects = decided.prepared, decided.effects
        outcome: dict[str, Any] = {
            "rule_id": effects.rule_id,
            "sent": 0,
            "handed_off": effects.handed_off,
        }
        if item.skipped:
            outcome["skipped"] = item.skipped
        if item.waiting_rule_id is not None:
            # Kept: queue_waiting_jobs reads it to queue a rule once per waiting episode.
            outcome["waiting_rule_id"] = item.waiting_rule_id
        if effects.trace:
            outcome["trace"] = effects.trace
        if effects.integration_ms is not None:
            outcome["integration_ms"] = round(effects.integration_ms, 1)
        if item.flow_turn is not None and item.flow_spec is not None:
            outcome["flow"] = {
                "flow_id": item.flow_spec.id,
                "version": item.flow_spec.version,
                "step": item.flow_turn.step,
                "outcome": item.flow_turn.outcome,
            }
        if item.faq is not None:
            best = item.faq.match
            outcome["faq"] = {
                "decision": item.faq.kind,
                "faq_id": best.entry.id if best else None,
                "score": best.score if best else None,
                "matcher": best.matcher if best else None,
            }
        outcome["sent"] = sum(
            1 for send in effects.sends if (send if isinstance(send, str) else send.text).strip()
        )
        return outcome

    @staticmethod
    def _requests(decided: Decided) -> list[tuple[str, SendRequest]]:
        """The job's replies as send requests (with the body each counts as), in order,
        each marked with what produced it (greeting, away, rule, FAQ, flow)."""
        item, effects = decided.prepared, decided.effects
        planned: list[tuple[str, SendRequest]] = []
        from_flow = {id(s) for s in item.flow_turn.sends} if item.flow_turn else set()
        for send in effects.sends:
            interactive = send if isinstance(send, Buttons | ListMessage) else None
            body = (send if isinstance(send, str) else send.text).strip()[:4096]
            if not body:
                continue
            kind = (
                "flow"
                if id(send) in from_flow
                else "rule"
                if interactive is not None
                else "greeting"
                if body == (item.greeting or "").strip()
                else "away"
                if body == (item.away or "").strip()
                else "faq"
                if item.faq_reply is not None and body == item.faq_reply.strip()[:4096]
                else "rule"
            )
            marker: dict[str, Any] = {"kind": kind, "rule_id": effects.rule_id}
            if kind == "faq":
                marker = {"kind": "faq", "faq_id": item.faq_count_id}
            elif kind == "flow" and item.flow_spec is not None:
                marker = {
                    "kind": "flow",
                    "flow_id": item.flow_spec.id,
                    "version": item.flow_spec.version,
                }
            request = (
                SendRequest(type="text", text=body, content={"automation": marker})
                if interactive is None
                else SendRequest(
                    type="interactive",
                    text=body[:1024],
                    content={
                        "interactive": dataclasses.replace(interactive, text=body).interactive(
                            effects.rule_id
                        ),
                        "automation": marker,
                    },
                )
            )
            planned.append((body, request))
        return planned

    async def _apply_effects(
        self, session: AsyncSession, conversation: Conversation, effects: Effects
    ) -> None:
        """Labels, priority, resolving, a team, notes and the hand-off of one job."""
        if effects.labels or effects.priority or effects.resolve:
            labels = None
            if effects.labels:
                current = list(
                    (
                        await session.scalars(
                            select(Label.name)
                            .join(ConversationLabel, ConversationLabel.label_id == Label.id)
                            .where(ConversationLabel.conversation_id == conversation.id)
                        )
                    ).all()
                )
                labels = sorted(set(current) | set(effects.labels))
            await do_update_conversation(
                session,
                actor=AUTOMATION_ACTOR,
                conversation=conversation,
                labels=labels,
                priority=effects.priority,
                status="resolved" if effects.resolve and not effects.handed_off else None,
            )
        if effects.team is not None:
            await self._assign_team(session, conversation, effects)
        for note in [*effects.notes, *effects.handoff_notes]:
            await do_add_note(
                session,
                actor=AUTOMATION_ACTOR,
                conversation=conversation,
                text=f"🤖 {note}"[:4000],
            )
        if effects.handed_off:
            if conversation.status != "open":
                await do_update_conversation(
                    session, actor=AUTOMATION_ACTOR, conversation=conversation, status="open"
                )
            queue_event(
                session,
                "automation.handoff",
                {"conversation_id": conversation.id, "inbox_id": conversation.inbox_id},
            )

    async def _apply_flow(self, session: AsyncSession, item: Prepared, now: Any) -> None:
        """Move the conversation's flow state along and count the flow's outcomes. Agents
        with the conversation open see the new position (the panel follows the event)."""
        if item.flow_end is not None or (item.flow_turn is not None and item.flow_spec):
            queue_event(
                session,
                "conversation.updated",
                {
                    "conversation_id": item.conversation_id,
                    "inbox_id": item.inbox_id,
                    "changes": ["flow"],
                },
            )
        if item.flow_end is not None:
            flow_id, reason = item.flow_end
            ended = await session.execute(
                delete(FlowState).where(
                    FlowState.conversation_id == item.conversation_id, FlowState.flow_id == flow_id
                )
            )
            # (the sweep may have ended and counted it first: rowcount 0)
            if reason == "timed_out" and cast(CursorResult[Any], ended).rowcount == 1:
                await session.execute(
                    update(Flow).where(Flow.id == flow_id).values(timed_out=Flow.timed_out + 1)
                )
        turn, spec = item.flow_turn, item.flow_spec
        if turn is None or spec is None:
            return
        counters: dict[str, Any] = {}
        if item.flow_new:
            counters["started"] = Flow.started + 1
        if turn.outcome == "completed":
            counters["completed"] = Flow.completed + 1
        elif turn.outcome == "handed_off":
            counters["handed_off"] = Flow.handed_off + 1
        if counters:
            await session.execute(update(Flow).where(Flow.id == spec.id).values(**counters))
        expires = now + timedelta(minutes=spec.timeout_minutes)
        if turn.step is None or item.flow_new:
            await session.execute(
                delete(FlowState).where(FlowState.conversation_id == item.conversation_id)
            )
        if turn.step is None:
            return
        if item.flow_new:
            session.add(
                FlowState(
                    conversation_id=item.conversation_id,
                    flow_id=spec.id,
                    version=spec.version,
                    step=turn.step,
                    retries=0,
                    started_at=now,
                    updated_at=now,
                    expires_at=expires,
                )
            )
        else:
            await session.execute(
                update(FlowState)
                .where(FlowState.conversation_id == item.conversation_id)
                .values(step=turn.step, retries=turn.retries, updated_at=now, expires_at=expires)
            )

    async def _assign_team(
        self, session: AsyncSession, conversation: Conversation, effects: Effects
    ) -> None:
        """A rule's assign_team: through ``do_assign_team`` (audited, re-routed within the
        team). A team deleted since the rule was saved: skipped, with a private note."""
        from wadesk.teams.models import Team

        assert effects.team is not None
        team_id, named = effects.team
        team = await session.get(Team, team_id)
        if team is None:
            await do_add_note(
                session,
                actor=AUTOMATION_ACTOR,
                conversation=conversation,
                text=f"🤖 Automation could not give this conversation to team “{named}”:"
                " the team no longer exists. Please update the rule.",
            )
        else:
            await do_assign_team(
                session, actor=AUTOMATION_ACTOR, conversation=conversation, team=team
            )

    @staticmethod
    def _state_row(
        item: Prepared, effects: Effects, sent: list[str], now: Any
    ) -> dict[str, Any] | None:
        """The job's row for ``_STATE_UPSERT`` (None: the job leaves the state alone): the
        pending question is this job's (or none); with replies sent, their count, the last
        one's text and the greeting/away times."""
        if not (sent or item.clear_pending or effects.pending is not None):
            return None
        row: dict[str, Any] = {
            "inbox_id": item.inbox_id,
            "contact_id": item.contact_id,
            "updated_at": now,
            "window_from": now - REPLY_WINDOW,
            "replies_window_at": now if sent else None,
            "replies_in_window": len(sent),
            "last_reply_text": sent[-1][:500] if sent else None,
            "last_greeting_at": now if item.greeting and item.greeting.strip() in sent else None,
            "last_away_at": now if item.away and item.away.strip() in sent else None,
            "pending_rule_id": None,
            "pending_step": None,
            "pending_data": None,
            "pending_until": None,
        }
        if effects.pending is not None:
            step, capture, pattern, minutes = effects.pending
            row.update(
                pending_rule_id=effects.rule_id,
                pending_step=step,
                pending_data={**effects.pending_data, "__capture": capture, "__pattern": pattern},
                pending_until=now + timedelta(minutes=minutes),
            )
        return row

    async def _update_states(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """All the round's contact states in one statement (executemany): the loop guard's
        window restarts when it is over, the last reply and greeting/away times move only
        when a reply was sent."""
        if not rows:
            return
        table = cast(Table, AutomationContactState.__table__)
        insert = insert_for(session.bind.dialect.name)
        types: dict[str, Any] = {"pending_data": JSON(none_as_null=True)}  # None: SQL NULL
        statement = insert(table).values(
            {
                column: bindparam(column, type_=types.get(column, table.c[column].type))
                for column in rows[0]
                if column != "window_from"
            }
        )
        new = statement.excluded
        window_over = or_(
            table.c.replies_window_at.is_(None),
            table.c.replies_window_at <= bindparam("window_from", type_=new.updated_at.type),
        )
        nothing_sent = new.replies_in_window == 0
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["inbox_id", "contact_id"],
                set_={
                    "updated_at": new.updated_at,
                    "pending_rule_id": new.pending_rule_id,
                    "pending_step": new.pending_step,
                    "pending_data": new.pending_data,
                    "pending_until": new.pending_until,
                    "replies_window_at": case(
                        (nothing_sent, table.c.replies_window_at),
                        (window_over, new.updated_at),
                        else_=table.c.replies_window_at,
                    ),
                    "replies_in_window": case(
                        (nothing_sent, table.c.replies_in_window),
                        (window_over, new.replies_in_window),
                        else_=table.c.replies_in_window + new.replies_in_window,
                    ),
                    "last_reply_text": func.coalesce(new.last_reply_text, table.c.last_reply_text),
                    "last_greeting_at": func.coalesce(
                        new.last_greeting_at, table.c.last_greeting_at
                    ),
                    "last_away_at": func.coalesce(new.last_away_at, table.c.last_away_at),
                },
            ),
            rows,
        )
