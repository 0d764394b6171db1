from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class InboxOut(BaseModel):
    id: int
    name: str
    channel_type: str
    phone_number_id: str
    waba_id: str | None
    display_phone_number: str | None
    graph_url: str
    api_version: str
    webhook_url: str
    needs_attention: bool
    attention_reason: str | None
    created_at: datetime


class WhatsAppInboxCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    phone_number_id: str = Field(pattern=r"^\d{1,30}$")
    waba_id: str | None = Field(default=None, pattern=r"^\d{1,30}$")
    display_phone_number: str | None = Field(default=None, max_length=32)
    access_token: str = Field(min_length=1, max_length=1000)
    app_secret: str = Field(min_length=1, max_length=200)
    verify_token: str | None = Field(default=None, min_length=8, max_length=200)
    graph_url: str | None = Field(default=None, pattern=r"^https?://", max_length=300)


class InboxUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    access_token: str | None = Field(default=None, min_length=1, max_length=1000)
    app_secret: str | None = Field(default=None, min_length=1, max_length=200)
    verify_token: str | None = Field(default=None, min_length=8, max_length=200)
