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
from wadesk.automation.models import (
    AutomationContactState,
    AutomationJob,
    AutomationRule,
    FaqDay,
    FaqEntry,
    Flow,
    FlowState,
    FlowVersion,
    InboxAutomation,
    Integration,
    MessageTemplate,
    QuickReply,
)
from wadesk.contacts.models import Contact, ContactIdentity
from wadesk.conversations.models import (
    Conversation,
    ConversationLabel,
    IdempotencyKey,
    Label,
    Mention,
    Message,
    PendingStatus,
)
from wadesk.inboxes.models import Inbox
from wadesk.ingest.models import WebhookDelivery
from wadesk.links.models import Link, LinkAttribution, LinkClickDay, LinkClickVisitor
from wadesk.media.models import Upload
from wadesk.outbox.models import OutboxItem
from wadesk.realtime.models import EventRecord, EventSequence, StagedEvent
from wadesk.routing.models import (
    AgentState,
    ConversationRouting,
    InboxRouting,
    QueueEntry,
    RoutingConfig,
    RoutingRule,
)
from wadesk.teams.models import Team, TeamMember

__all__ = [
    "AgentState",
    "ApiToken",
    "AuditEvent",
    "AutomationContactState",
    "AutomationJob",
    "AutomationRule",
    "Contact",
    "ContactIdentity",
    "Conversation",
    "ConversationLabel",
    "ConversationRouting",
    "EventRecord",
    "EventSequence",
    "FaqDay",
    "FaqEntry",
    "Flow",
    "FlowState",
    "FlowVersion",
    "IdempotencyKey",
    "Inbox",
    "InboxAutomation",
    "InboxMember",
    "InboxRouting",
    "Integration",
    "Label",
    "Link",
    "LinkAttribution",
    "LinkClickDay",
    "LinkClickVisitor",
    "LoginThrottle",
    "Mention",
    "Message",
    "MessageTemplate",
    "OutboxItem",
    "PendingStatus",
    "QueueEntry",
    "QuickReply",
    "RecoveryCode",
    "RoutingConfig",
    "RoutingRule",
    "SecurityPolicy",
    "StagedEvent",
    "Team",
    "TeamMember",
    "Upload",
    "User",
    "UserSession",
    "WebhookDelivery",
]
