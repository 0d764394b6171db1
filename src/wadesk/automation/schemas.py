"""API shapes of automation."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, Field

from wadesk.automation.models import (
    AutomationRule,
    FaqDay,
    FaqEntry,
    Flow,
    InboxAutomation,
    Integration,
    MessageTemplate,
    QuickReply,
)
from wadesk.db import utcnow

REVIEW_EVERY = timedelta(days=90)


class RuleIn(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    trigger: str | None = None
    conditions: dict[str, Any] | None = None
    actions: list[dict[str, Any]] | None = None
    after_handoff: bool | None = None
    enabled: bool | None = None


class RuleOut(BaseModel):
    id: int
    inbox_id: int
    name: str
    position: int
    enabled: bool
    trigger: str
    conditions: dict[str, Any]
    actions: list[dict[str, Any]]
    after_handoff: bool
    matches: int
    answered: int
    handed_off: int
    answered_rate: float | None
    last_matched_at: datetime | None
    last_reviewed_at: datetime
    review_due: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, rule: AutomationRule) -> RuleOut:
        return cls(
            id=rule.id,
            inbox_id=rule.inbox_id,
            name=rule.name,
            position=rule.position,
            enabled=rule.enabled,
            trigger=rule.trigger,
            conditions=rule.conditions or {},
            actions=rule.actions or [],
            after_handoff=rule.after_handoff,
            matches=rule.matches,
            answered=rule.answered,
            handed_off=rule.handed_off,
            answered_rate=round(rule.answered / rule.matches, 3) if rule.matches else None,
            last_matched_at=rule.last_matched_at,
            last_reviewed_at=rule.last_reviewed_at,
            review_due=review_due(rule),
            created_at=rule.created_at,
            updated_at=rule.updated_at,
        )


class FlowIn(BaseModel):
    """Create (inbox_id, name, definition required) or update (any field; a changed
    definition is saved as the next version)."""

    inbox_id: int | None = None
    name: str | None = Field(default=None, max_length=120)
    enabled: bool | None = None
    definition: dict[str, Any] | None = None


class FlowOut(BaseModel):
    id: int
    inbox_id: int
    name: str
    enabled: bool
    version: int
    definition: dict[str, Any]
    started: int
    completed: int
    handed_off: int
    timed_out: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, flow: Flow) -> FlowOut:
        return cls(
            id=flow.id,
            inbox_id=flow.inbox_id,
            name=flow.name,
            enabled=flow.enabled,
            version=flow.version,
            definition=flow.definition or {},
            started=flow.started,
            completed=flow.completed,
            handed_off=flow.handed_off,
            timed_out=flow.timed_out,
            created_at=flow.created_at,
            updated_at=flow.updated_at,
        )


class FlowDetailOut(FlowOut):
    versions: list[int]  # every saved version, oldest first
    in_flow: int  # conversations in the flow now


def review_due(rule: AutomationRule | FaqEntry) -> bool:
    return rule.last_reviewed_at < utcnow() - REVIEW_EVERY


class MoveIn(BaseModel):
    offset: int = Field(ge=-1000, le=1000)


class TryIn(BaseModel):
    text: str = Field(max_length=4096)
    contact: dict[str, str] = Field(default_factory=dict)


class TryOut(BaseModel):
    rule_id: int | None
    rule_name: str | None
    captures: dict[str, str]
    open_now: bool
    evaluated_rules: int
    eval_us: float


class IntegrationIn(BaseModel):
    name: str | None = Field(default=None, max_length=60)
    url: str | None = Field(default=None, max_length=2000)
    method: str | None = None
    headers: dict[str, str] | None = None
    secret_header: str | None = None
    secret: str | None = Field(default=None, max_length=2000)
    timeout_seconds: float | None = None


class IntegrationOut(BaseModel):
    id: int
    name: str
    url: str
    method: str
    headers: dict[str, str]
    secret_header: str | None
    has_secret: bool
    timeout_seconds: float
    updated_at: datetime

    @classmethod
    def of(cls, row: Integration) -> IntegrationOut:
        return cls(
            id=row.id,
            name=row.name,
            url=row.url,
            method=row.method,
            headers=row.headers or {},
            secret_header=row.secret_header,
            has_secret=bool(row.secret),
            timeout_seconds=row.timeout_seconds,
            updated_at=row.updated_at,
        )


class InboxAutomationIn(BaseModel):
    timezone: str | None = Field(default=None, max_length=64)
    schedule: dict[str, list[list[str]]] | None = None
    holidays: list[str] | None = None
    greeting_enabled: bool | None = None
    greeting_text: str | None = None
    greeting_after_days: int | None = None
    away_enabled: bool | None = None
    away_text: str | None = None
    faq_enabled: bool | None = None
    faq_threshold: int | None = Field(default=None, ge=0, le=100)


class InboxAutomationOut(BaseModel):
    inbox_id: int
    timezone: str
    schedule: dict[str, list[list[str]]]
    holidays: list[str]
    greeting_enabled: bool
    greeting_text: str
    greeting_after_days: int
    away_enabled: bool
    away_text: str
    faq_enabled: bool
    faq_threshold: int
    open_now: bool
    next_opening: datetime | None

    @classmethod
    def of(
        cls, row: InboxAutomation, open_now: bool, next_opening: datetime | None
    ) -> InboxAutomationOut:
        return cls(
            inbox_id=row.inbox_id,
            timezone=row.timezone,
            schedule=row.schedule or {},
            holidays=row.holidays or [],
            greeting_enabled=row.greeting_enabled,
            greeting_text=row.greeting_text,
            greeting_after_days=row.greeting_after_days,
            away_enabled=row.away_enabled,
            away_text=row.away_text,
            faq_enabled=row.faq_enabled,
            faq_threshold=row.faq_threshold,
            open_now=open_now,
            next_opening=next_opening,
        )


class QuickReplyIn(BaseModel):
    inbox_id: int | None = None
    shortcut: str | None = Field(default=None, max_length=61)
    title: str | None = Field(default=None, max_length=200)
    text: str | None = Field(default=None, max_length=4096)
    media_link: str | None = Field(default=None, max_length=2000)


class QuickReplyOut(BaseModel):
    id: int
    inbox_id: int | None
    shortcut: str
    title: str
    text: str
    media_link: str | None
    usage_count: int
    updated_at: datetime

    @classmethod
    def of(cls, row: QuickReply) -> QuickReplyOut:
        return cls(
            id=row.id,
            inbox_id=row.inbox_id,
            shortcut=row.shortcut,
            title=row.title,
            text=row.text,
            media_link=row.media_link,
            usage_count=row.usage_count,
            updated_at=row.updated_at,
        )


class RenderIn(BaseModel):
    conversation_id: int


class RenderOut(BaseModel):
    text: str
    media_link: str | None


class TemplateIn(BaseModel):
    inbox_id: int
    name: str = Field(max_length=512)
    language: str = Field(max_length=16)
    category: str = Field(max_length=30)
    body: str = Field(max_length=1024)
    header: str | None = Field(default=None, max_length=60)
    footer: str | None = Field(default=None, max_length=60)
    buttons: list[str] = Field(default_factory=list, max_length=3)
    examples: list[str] = Field(default_factory=list, max_length=20)


class TemplateOut(BaseModel):
    id: int
    inbox_id: int
    external_id: str | None
    name: str
    language: str
    category: str
    status: str
    components: list[dict[str, Any]]
    rejected_reason: str | None
    parameters: dict[str, int]
    synced_at: datetime

    @classmethod
    def of(cls, row: MessageTemplate, parameters: dict[str, int]) -> TemplateOut:
        return cls(
            id=row.id,
            inbox_id=row.inbox_id,
            external_id=row.external_id,
            name=row.name,
            language=row.language,
            category=row.category,
            status=row.status,
            components=row.components or [],
            rejected_reason=row.rejected_reason,
            parameters=parameters,
            synced_at=row.synced_at,
        )


class TemplateParams(BaseModel):
    body: list[str] = Field(default_factory=list, max_length=50)
    header: list[str] = Field(default_factory=list, max_length=5)


class TemplateSendIn(TemplateParams):
    conversation_id: int


class SyncOut(BaseModel):
    created: int
    updated: int
    removed: int


# ------------------------------------------------------------------ FAQ bot

Phrasing = Annotated[str, Field(max_length=500)]


class FaqIn(BaseModel):
    """Create (question and answer required) or change an FAQ entry; inbox_id null: shared."""

    inbox_id: int | None = None
    question: str | None = Field(default=None, min_length=1, max_length=500)
    alternatives: list[Phrasing] | None = Field(default=None, max_length=20)
    answer: str | None = Field(default=None, min_length=1, max_length=4096)
    language: str | None = Field(default=None, max_length=16)
    enabled: bool | None = None


def hit_rate(answered: int, matches: int) -> float | None:
    return round(answered / matches, 3) if matches else None


class FaqOut(BaseModel):
    id: int
    inbox_id: int | None
    question: str
    alternatives: list[str]
    answer: str
    language: str | None
    enabled: bool
    matches: int
    answered: int
    handed_off: int
    hit_rate: float | None  # answered / matches
    last_matched_at: datetime | None
    last_reviewed_at: datetime
    review_due: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: FaqEntry) -> FaqOut:
        return cls(
            id=row.id,
            inbox_id=row.inbox_id,
            question=row.question,
            alternatives=list(row.alternatives or []),
            answer=row.answer,
            language=row.language,
            enabled=row.enabled,
            matches=row.matches,
            answered=row.answered,
            handed_off=row.handed_off,
            hit_rate=hit_rate(row.answered, row.matches),
            last_matched_at=row.last_matched_at,
            last_reviewed_at=row.last_reviewed_at,
            review_due=review_due(row),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class FaqDayOut(BaseModel):
    day: date
    matches: int
    answered: int
    handed_off: int
    hit_rate: float | None

    @classmethod
    def of(cls, row: FaqDay) -> FaqDayOut:
        return cls(
            day=row.day,
            matches=row.matches,
            answered=row.answered,
            handed_off=row.handed_off,
            hit_rate=hit_rate(row.answered, row.matches),
        )


class FaqDetailOut(FaqOut):
    history: list[FaqDayOut]  # the last 90 days that had matches, oldest first


class FaqTestIn(BaseModel):
    inbox_id: int
    text: str = Field(min_length=1, max_length=4096)


class FaqScore(BaseModel):
    faq_id: int
    question: str
    score: float
    phrasing: str
    matcher: str  # fuzzy | semantic: which scorer gave the score


class FaqTestOut(BaseModel):
    """What the FAQ bot would do with this text in this inbox (nothing is sent)."""

    faq_enabled: bool
    threshold: int
    decision: str  # answer | handoff | none
    matches: list[FaqScore]
