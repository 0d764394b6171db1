from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    channel_type: str
    address: str
    profile_name: str | None


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str | None
    phone_e164: str | None
    email: str | None
    attributes: dict[str, Any]
    first_source: dict[str, Any] | None = Field(
        default=None, description="The link or ad the contact first came from"
    )
    last_source: dict[str, Any] | None = Field(
        default=None, description="The link or ad that started their latest attributed conversation"
    )
    created_at: datetime
    updated_at: datetime
    identities: list[IdentityOut] = []


class ContactConversationOut(BaseModel):
    """One of a contact's conversations, for the contact panel's history."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    inbox_id: int
    status: str
    created_at: datetime
    resolved_at: datetime | None
    last_activity_at: datetime
    last_message_preview: str | None
    source: dict[str, Any] | None


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40, examples=["+55 11 98765-4321"])
    email: EmailStr | None = None
    attributes: dict[str, Any] = Field(default_factory=dict, examples=[{"plan": "gold"}])


class ContactUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    email: EmailStr | None = None
    # The example lives in the description: FastAPI drops null values from OpenAPI examples.
    attributes: dict[str, Any] | None = Field(
        default=None,
        description=(
            "A JSON merge patch (RFC 7396) of the attributes, one level deep: a key set to null "
            "is removed, any other value sets or replaces the key (objects are replaced whole, "
            "not merged), keys not named are left as they are. Example: "
            '`{"plan": "gold", "tier": null}` sets `plan` and removes `tier`.'
        ),
    )
