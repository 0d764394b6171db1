from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wadesk.conversations.models import CONVERSATION_STATUSES, PRIORITIES

Status = Literal["open", "pending", "snoozed", "resolved"]
Priority = Literal["none", "low", "medium", "high", "urgent"]
Folder = Literal["mine", "unassigned", "all"]
assert set(CONVERSATION_STATUSES) == {"open", "pending", "snoozed", "resolved"}
assert set(PRIORITIES) == {"none", "low", "medium", "high", "urgent"}


class LabelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    color: str = Field(examples=["#22c55e"])


class LabelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60, examples=["billing"])
    color: str | None = Field(
        default=None, pattern=r"^#[0-9a-fA-F]{6}$", examples=["#22c55e"], description="#rrggbb"
    )


class LabelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=60)
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb")


class NoteCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "@maria can you check the refund?"}]},
    )
    text: str = Field(min_length=1, max_length=10_000)
    mentions: list[int] = Field(
        default_factory=list,
        max_length=20,
        description="User ids to notify; @email or @name in the text mention too",
    )


class MentionOut(BaseModel):
    id: int
    conversation_id: int
    message_id: int
    author_user_id: int | None
    author_name: str | None
    excerpt: str
    created_at: datetime
    read_at: datetime | None


class MentionsRead(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] | None = Field(
        default=None, max_length=500, description="Mention ids; omit to mark all read"
    )


class FolderCounts(BaseModel):
    """Open conversations per folder, and those among them with unread customer messages."""

    mine: int
    unassigned: int
    all: int
    mine_unread: int
    unassigned_unread: int
    all_unread: int


class ConversationOut(BaseModel):
    id: int
    inbox_id: int
    contact_id: int
    contact_name: str | None
    status: str
    priority: str
    assignee_id: int | None
    labels: list[str]
    label_details: list[LabelOut] = Field(
        default_factory=list, description="The labels with their id and colour"
    )
    source: dict[str, Any] | None = Field(
        default=None,
        description="The click-to-chat link or ad that started the conversation (type: link|ad)",
    )
    snoozed_until: datetime | None
    last_customer_message_at: datetime | None
    window_closes_at: datetime | None = Field(
        description="When the 24-hour customer service window closes (null: closed, never opened)"
    )
    last_activity_at: datetime
    last_message_preview: str | None
    unread_count: int
    created_at: datetime
    resolved_at: datetime | None


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    assignee_id: int | None = Field(default=None, description="A user id; null to unassign")
    priority: Priority | None = None
    snoozed_until: datetime | None = None
    labels: list[str] | None = Field(default=None, max_length=50, examples=[["billing", "vip"]])

    @model_validator(mode="after")
    def _aware(self) -> ConversationUpdate:
        if self.snoozed_until is not None and self.snoozed_until.tzinfo is None:
            raise ValueError("snoozed_until needs a time zone (e.g. 2026-01-01T09:00:00Z)")
        return self


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    conversation_id: int
    direction: Literal["in", "out"]
    type: str
    text: str | None
    content: dict[str, Any]
    external_id: str | None
    reply_to_external_id: str | None
    referral: dict[str, Any] | None
    status: str
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    error_code: str | None
    error_title: str | None
    media_mime: str | None
    media_filename: str | None
    media_size: int | None
    media_status: str | None
    sender_user_id: int | None
    created_at: datetime
    provider_timestamp: datetime | None


class MessageCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"type": "text", "text": "Hello! Your order left the warehouse."},
                {
                    "type": "template",
                    "content": {
                        "name": "order_update",
                        "language": "pt_BR",
                        "components": [
                            {"type": "body", "parameters": [{"type": "text", "text": "12345"}]}
                        ],
                    },
                },
                {
                    "type": "image",
                    "media_link": "https://example.com/receipt.png",
                    "text": "Receipt",
                },
                {"type": "reaction", "content": {"message_id": 42, "emoji": "👍"}},
            ]
        },
    )
    type: Literal[
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "reaction",
        "template",
        "interactive",
    ] = "text"
    text: str | None = Field(default=None, max_length=4096)
    content: dict[str, Any] | None = None
    reply_to_message_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    media_link: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    upload_id: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="A file from POST /api/v1/uploads"
    )


BATCH_MAX = 100


class BatchItem(MessageCreate):
    idempotency_key: str = Field(
        min_length=1, max_length=255, description="The same key never sends twice"
    )


class MessageBatch(BaseModel):
    """Messages written in a row (an agent's offline queue): sent in this order, each once."""

    model_config = ConfigDict(extra="forbid")
    messages: list[BatchItem] = Field(min_length=1, max_length=BATCH_MAX)

    @model_validator(mode="after")
    def _keys_differ(self) -> MessageBatch:
        keys = [m.idempotency_key for m in self.messages]
        if len(set(keys)) != len(keys):
            raise ValueError("each message of a batch needs its own idempotency_key")
        return self


class BatchError(BaseModel):
    code: str
    message: str


class BatchResult(BaseModel):
    idempotency_key: str
    status: int = Field(description="201 queued, 200 replay of an earlier send, 4xx refused")
    message: MessageOut | None = None
    error: BatchError | None = None


class BatchOut(BaseModel):
    results: list[BatchResult]
