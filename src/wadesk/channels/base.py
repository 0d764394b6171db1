"""The neutral language between channels and the rest of wadesk.

Vendor payloads never leave ``channels/<name>/``: parsers turn them into these types, and
senders take an :class:`OutboundMessage` and answer with a :class:`SendResult` or raise
:class:`ChannelSendError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Media:
    provider_id: str
    mime_type: str | None = None
    filename: str | None = None
    sha256: str | None = None
    voice: bool = False


@dataclass(frozen=True, slots=True)
class InboundMessage:
    account_id: str  # which of our accounts received it (WhatsApp phone_number_id)
    external_id: str
    sender: str  # provider address (wa_id)
    sender_name: str | None
    timestamp: datetime
    type: str
    text: str | None = None
    content: dict[str, Any] = field(default_factory=dict)
    media: Media | None = None
    reply_to_external_id: str | None = None
    referral: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    account_id: str
    external_id: str
    status: str  # sent | delivered | read | failed | deleted
    timestamp: datetime
    recipient: str | None = None
    error_code: str | None = None
    error_title: str | None = None
    # What the send carried in ``biz_opaque_callback_data``: wadesk's own message reference,
    # which ties a status to a send whose answer never arrived.
    callback_data: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedDelivery:
    messages: list[InboundMessage]
    statuses: list[StatusUpdate]
    # Account-level errors and change fields we keep but do not act on.
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    recipient: str
    type: str  # text | image | audio | video | document | sticker | reaction | template | location
    text: str | None = None
    content: dict[str, Any] = field(default_factory=dict)
    reply_to_external_id: str | None = None
    media_link: str | None = None
    media_id: str | None = None
    # Echoed back by the provider in the message's status webhooks (see outbox.tracking).
    tracking: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    external_id: str


class ChannelSendError(Exception):
    """A send that did not go through. ``transient`` says whether retrying can help.

    ``maybe_sent``: the request reached the provider and no answer came back (a timeout or a
    dropped connection after the request was written, an unreadable success), so the
    message may have gone out; sending it again at once could deliver it twice.
    """

    def __init__(
        self,
        code: str,
        title: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        account_problem: bool = False,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(f"{code}: {title}")
        self.code = code
        self.title = title
        self.transient = transient
        self.retry_after = retry_after
        self.account_problem = account_problem
        self.maybe_sent = maybe_sent


@dataclass(frozen=True, slots=True)
class ChannelCapabilities:
    service_window_hours: int | None  # None: no window rule
    supports_templates: bool
    max_media_bytes: dict[str, int]


class Channel(Protocol):
    capabilities: ChannelCapabilities

    async def send(self, message: OutboundMessage) -> SendResult: ...

    async def fetch_media(self, media_id: str) -> tuple[bytes, str | None]: ...
