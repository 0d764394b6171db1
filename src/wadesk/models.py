"""Imports every table so that Base.metadata is complete (migrations, tests)."""

from wadesk.accounts.models import (
    ApiToken,
    InboxMember,
    LoginThrottle,
    RecoveryCode,
    SecurityPolicy,
    User,
    UserSession,
)
from wadesk.audit.models import AuditEvent
from wadesk.contacts.models import Contact, ContactIdentity
from wadesk.conversations.models import (
    Conversation,
    ConversationLabel,
    IdempotencyKey,
    Label,
    Message,
    PendingStatus,
)
from wadesk.inboxes.models import Inbox
from wadesk.ingest.models import WebhookDelivery
from wadesk.links.models import Link, LinkAttribution, LinkClickDay, LinkClickVisitor
from wadesk.outbox.models import OutboxItem

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Contact",
    "ContactIdentity",
    "Conversation",
    "ConversationLabel",
    "IdempotencyKey",
    "Inbox",
    "InboxMember",
    "Label",
    "Link",
    "LinkAttribution",
    "LinkClickDay",
    "LinkClickVisitor",
    "LoginThrottle",
    "Message",
    "OutboxItem",
    "PendingStatus",
    "RecoveryCode",
    "SecurityPolicy",
    "User",
    "UserSession",
    "WebhookDelivery",
]
