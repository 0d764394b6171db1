"""The simulator's in-memory world: business numbers, customers and their conversations."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Sender = Literal["customer", "business"]


@dataclass
class BusinessNumber:
    phone_number_id: str
    display_phone_number: str
    waba_id: str
    access_token: str  # bearer token the simulator expects on Graph calls
    app_secret: str  # key that signs the webhooks (X-Hub-Signature-256)
    webhook_url: str  # where the webhooks are POSTed
    verified_name: str = "wadesk simulator"  # the business name customers see


@dataclass
class CustomerMessage:
    """One message of ``Simulator.customer_sends_batch``: a short form or a Meta object."""

    phone_number_id: str
    wa_id: str
    name: str
    message: dict[str, Any]


@dataclass
class ChatMessage:
    """One message as the customer's phone knows it, in either direction."""

    id: str
    phone_number_id: str
    wa_id: str
    sender: Sender
    type: str
    payload: dict[str, Any]  # the Meta message object, or the business's request body
    timestamp: float = field(default_factory=time.time)
    # Business messages: accepted, sent, delivered, read or failed. Customer messages: the
    # business's read receipt (delivered, then read).
    status: str = "accepted"
    error: str | None = None
    read_requested: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Conversation:
    phone_number_id: str
    wa_id: str
    messages: list[ChatMessage] = field(default_factory=list)
    last_customer_at: float | None = None
    typing_until: float = 0.0  # the business's typing indicator shows until then
    version: int = 0  # bumped on every change so the page re-renders only when needed

    def touch(self) -> None:
        self.version += 1


def digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def brazil_variant(wa_id: str) -> str | None:
    """The same Brazilian mobile with or without the ninth digit (both are one person)."""
    if wa_id.startswith("55") and len(wa_id) == 13 and wa_id[4] == "9":
        return wa_id[:4] + wa_id[5:]
    if wa_id.startswith("55") and len(wa_id) == 12 and wa_id[4] in "6789":
        return wa_id[:4] + "9" + wa_id[4:]
    return None


def new_wamid(wa_id: str) -> str:
    """An id shaped like Meta's: base64 of a small binary record holding the user and a nonce."""
    user = wa_id.encode()[:255]
    nonce = secrets.token_hex(10).upper().encode()
    raw = b"\x1c\x18" + bytes([len(user)]) + user + b"\x15\x02\x00\x11\x18\x14" + nonce + b"\x00"
    return "wamid." + base64.b64encode(raw).decode()


def new_numeric_id() -> str:
    """Graph object ids are large decimal numbers."""
    return str(10**15 + secrets.randbelow(9 * 10**15))


def unix_now() -> str:
    return str(int(time.time()))
