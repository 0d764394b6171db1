"""People, sessions, tokens and the security policy in the API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["admin", "supervisor", "agent"]
Scope = Literal["read", "write", "admin"]
MfaPolicy = Literal["optional", "admins", "everyone"]


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    is_active: bool
    mfa_enabled: bool
    inbox_ids: list[int] = Field(description="Inboxes the person is a member of")
    created_at: datetime
    last_sign_in_at: datetime | None
    deactivated_at: datetime | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    name: str = Field(min_length=1, max_length=200)
    role: Role = "agent"
    password: str | None = Field(
        default=None, max_length=128, description="Initial password (the policy applies)"
    )
    inbox_ids: list[int] = Field(default_factory=list, max_length=500)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    is_active: bool | None = Field(
        default=None,
        description="false: deactivate (sessions and tokens end, conversations unassigned)",
    )


class SessionOut(BaseModel):
    id: int
    device: str
    ip: str | None
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    mfa_method: str | None
    current: bool = Field(description="The session this request was made with")


class TokenOut(BaseModel):
    id: int
    user_id: int
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None
    revoked_at: datetime | None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(default=["read"], min_length=1)
    expires_at: datetime | None = Field(default=None, description="Never expires when null")


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown once, store it now")


class PolicyOut(BaseModel):
    mfa_policy: MfaPolicy


class PolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mfa_policy: MfaPolicy


class Ended(BaseModel):
    ended: int
