"""Status items (``statuses[]``) of the webhooks that follow a business message.

Pricing follows Meta's per-message model: free-form replies inside the customer service
window and utility templates inside it are free (``free_customer_service``); other templates
are billable in their category.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from wadesk.channels.simulator.state import unix_now

WINDOW_SECONDS = 24 * 3600
STATUS_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


@dataclass(frozen=True)
class Billing:
    category: str  # service, utility, marketing or authentication
    billable: bool

    def pricing(self) -> dict[str, Any]:
        return {
            "billable": self.billable,
            "pricing_model": "PMP",
            "type": "regular" if self.billable else "free_customer_service",
            "category": self.category,
        }


def billing_for(template_category: str | None, window_open: bool) -> Billing:
    if template_category is None:
        return Billing("service", False)
    category = template_category.lower()
    return Billing(category, not (window_open and category == "utility"))


@dataclass
class ConversationIds:
    """Conversation ids per (number, customer, category), each valid for 24 hours."""

    _ids: dict[tuple[str, str, str], tuple[str, float]] = field(default_factory=dict)

    def get(self, phone_number_id: str, wa_id: str, category: str) -> tuple[str, float]:
        key = (phone_number_id, wa_id, category)
        found = self._ids.get(key)
        now = time.time()
        if found is None or found[1] <= now:
            found = (secrets.token_hex(16), now + WINDOW_SECONDS)
            self._ids[key] = found
        return found


def status_item(
    message_id: str,
    recipient_id: str,
    status: str,
    *,
    billing: Billing | None = None,
    conversation: tuple[str, float] | None = None,
    errors: list[dict[str, Any]] | None = None,
    callback_data: str | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": unix_now(),
        "recipient_id": recipient_id,
    }
    if conversation is not None and billing is not None:
        item["conversation"] = {"id": conversation[0], "origin": {"type": billing.category}}
        if status == "sent":
            item["conversation"]["expiration_timestamp"] = str(int(conversation[1]))
    if billing is not None:
        item["pricing"] = billing.pricing()
    if errors:
        item["errors"] = errors
    if callback_data is not None:
        item["biz_opaque_callback_data"] = callback_data
    return item
