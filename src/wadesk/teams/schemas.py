"""Teams over the API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TeamMemberOut(BaseModel):
    user_id: int
    name: str
    email: str
    role: str


class TeamOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    routing_strategy: str | None
    created_at: datetime
    members: list[TeamMemberOut] = []


class TeamCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    routing_strategy: Literal["least_loaded", "round_robin"] | None = None


class TeamUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    routing_strategy: Literal["least_loaded", "round_robin", ""] | None = None


class MemberIn(BaseModel):
    role: Literal["agent", "supervisor"] = "agent"


class TeamList(BaseModel):
    items: list[TeamOut]
