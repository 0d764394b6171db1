"""Counts of everything the simulator saw, for GET /control/state and for tests.

``copies`` of a wamid is how many accepted sends carried the same customer-visible message
(same number, customer and content): a client that never sends a message twice keeps it at 1.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

# Request fields that do not change what the customer sees.
INVISIBLE_FIELDS = ("biz_opaque_callback_data", "recipient_type", "messaging_product", "to")


def fingerprint(phone_number_id: str, wa_id: str, body: dict[str, Any]) -> str:
    visible = {key: value for key, value in body.items() if key not in INVISIBLE_FIELDS}
    raw = orjson.dumps([phone_number_id, wa_id, visible], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


@dataclass
class RecipientStats:
    attempts: int = 0
    accepted: int = 0
    rejected: int = 0


@dataclass
class SendStats:
    accepted: int = 0
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    rejected_by_http_status: Counter[str] = field(default_factory=Counter)
    timeouts: int = 0
    failed_statuses_by_code: Counter[str] = field(default_factory=Counter)
    recipients: defaultdict[str, RecipientStats] = field(
        default_factory=lambda: defaultdict(RecipientStats)
    )
    # wamid -> (to, type, fingerprint); fingerprint -> accepted sends with it
    messages: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    copies: Counter[str] = field(default_factory=Counter)
    webhooks_delivered: int = 0
    webhook_attempts_failed: int = 0
    webhooks_abandoned: int = 0
    inbound_messages: int = 0

    def attempt(self, wa_id: str | None) -> None:
        if wa_id:
            self.recipients[wa_id].attempts += 1

    def reject(self, wa_id: str | None, code: int, http_status: int) -> None:
        self.rejected_by_code[str(code)] += 1
        self.rejected_by_http_status[str(http_status)] += 1
        if wa_id:
            self.recipients[wa_id].rejected += 1

    def accept(self, wamid: str, wa_id: str, kind: str, print_: str) -> None:
        self.accepted += 1
        self.recipients[wa_id].accepted += 1
        self.messages[wamid] = (wa_id, kind, print_)
        self.copies[print_] += 1

    def to_dict(self) -> dict[str, Any]:
        messages = {
            wamid: {"to": to, "type": kind, "copies": self.copies[print_]}
            for wamid, (to, kind, print_) in self.messages.items()
        }
        return {
            "sends": {
                "accepted": self.accepted,
                "rejected": sum(self.rejected_by_code.values()),
                "rejected_by_code": dict(self.rejected_by_code),
                "rejected_by_http_status": dict(self.rejected_by_http_status),
                "timeouts": self.timeouts,
                "failed_statuses_by_code": dict(self.failed_statuses_by_code),
            },
            "recipients": {
                wa_id: {"attempts": r.attempts, "accepted": r.accepted, "rejected": r.rejected}
                for wa_id, r in self.recipients.items()
            },
            "messages": messages,
            "max_copies": max(self.copies.values(), default=0),
            "webhooks": {
                "delivered": self.webhooks_delivered,
                "failed_attempts": self.webhook_attempts_failed,
                "abandoned": self.webhooks_abandoned,
            },
            "inbound_messages": self.inbound_messages,
        }
