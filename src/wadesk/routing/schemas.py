"""Routing over the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Availability = Literal["online", "busy", "away", "offline"]
Strategy = Literal["least_loaded", "round_robin"]


class MyState(BaseModel):
    user_id: int
    availability: str
    load: int
    capacity: int
    languages: list[str]
    last_assigned_at: datetime | None
    last_seen_at: datetime | None


class AvailabilityIn(BaseModel):
    availability: Availability


class AgentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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
    inbox_ids: list[int]


class AgentUpdate(BaseModel):
    capacity: int | None = Field(default=None, ge=0, le=1000)
    clear_capacity: bool = False
    languages: list[str] | None = Field(default=None, max_length=20)


class WaitingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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


class QueueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    waiting: int
    longest_wait_s: float
    breaches: int
    breaches_open: int
    default_capacity: int
    entries: list[WaitingOut]
    agents: list[AgentOut]


class AssignIn(BaseModel):
    user_id: int | None
    force: bool = False


class ConversationRoutingOut(BaseModel):
    conversation_id: int
    assignee_id: int | None
    queued: bool
    queue_position: int | None
    team_id: int | None
    language: str | None
    tags: list[str]
    matched_rules: list[int]
    first_response_due_at: datetime | None
    first_response_at: datetime | None
    breached_at: datetime | None


class InboxRoutingIO(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    enabled: bool = True
    strategy: Strategy = "least_loaded"
    capacity: int | None = Field(default=None, ge=0, le=1000)
    sticky_days: int = Field(default=0, ge=0, le=365)
    offline_behaviour: Literal["keep", "return"] = "keep"


class ConfigIO(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    default_capacity: int = Field(default=5, ge=0, le=1000)
    languages: list[str] = Field(default_factory=list, max_length=30)
    returns_threshold: int = Field(default=2, ge=0, le=1000)
    spend_threshold: float = Field(default=1000.0, ge=0)
    frequent_threshold: int = Field(default=3, ge=0, le=1000)
    first_response_seconds: int = Field(default=60, ge=0, le=86400)


class AttributeCondition(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists"] = "eq"
    value: Any = None


class Conditions(BaseModel):
    keywords: list[str] = Field(default_factory=list, max_length=200)
    regex: str | None = Field(default=None, max_length=300)
    languages: list[str] = Field(default_factory=list, max_length=30)
    inbox_ids: list[int] = Field(default_factory=list, max_length=100)
    business_hours: Literal["open", "closed"] | None = None
    attributes: list[AttributeCondition] = Field(default_factory=list, max_length=20)

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        clean = [k.strip() for k in value if k.strip()]
        if any(len(k) > 100 for k in clean):
            raise ValueError("a keyword has at most 100 characters")
        return clean


class Actions(BaseModel):
    team_id: int | None = None
    priority: Literal["none", "low", "medium", "high", "urgent"] | None = None
    labels: list[str] = Field(default_factory=list, max_length=20)


class RuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=0, le=100000)
    enabled: bool = True
    stop: bool = False
    conditions: Conditions = Field(default_factory=Conditions)
    actions: Actions = Field(default_factory=Actions)


class RulePatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=0, le=100000)
    enabled: bool | None = None
    stop: bool | None = None
    conditions: Conditions | None = None
    actions: Actions | None = None


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    position: int
    enabled: bool
    stop: bool
    conditions: dict[str, Any]
    actions: dict[str, Any]
    match_count: int
    last_matched_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RuleList(BaseModel):
    items: list[RuleOut]


class RuleTestIn(BaseModel):
    text: str = Field(default="", max_length=4096)
    inbox_id: int = 0
    attributes: dict[str, Any] = Field(default_factory=dict)


class RuleTestOut(BaseModel):
    language: str | None
    matched: list[int]
    team_id: int | None
    priority: str | None
    labels: list[str]
