"""Roles and permissions as data: the one table the code and docs/permissions.md agree on.

A principal holds a permission when its role is listed for it AND its credential carries the
permission's scope (a web session carries every scope its role allows; an API token only the
scopes it was created with). What a permission reaches is limited further by inbox
membership (see :class:`wadesk.accounts.access.Principal`): an agent or supervisor sees the
conversations, contacts and media of the inboxes they are a member of; an admin sees all.
"""

from __future__ import annotations

from dataclasses import dataclass

from wadesk.accounts.models import ROLES


@dataclass(frozen=True, slots=True)
class Permission:
    name: str
    roles: frozenset[str]
    scope: str  # the API token scope it needs: read | write | admin
    description: str


_ALL = frozenset(ROLES)
_ADMIN = frozenset({"admin"})
_SUPERVISORS = frozenset({"admin", "supervisor"})

PERMISSIONS: dict[str, Permission] = {
    p.name: p
    for p in (
        Permission(
            "conversations.read",
            _ALL,
            "read",
            "See conversations, messages and media (member inboxes)",
        ),
        Permission(
            "conversations.write",
            _ALL,
            "write",
            "Reply, assign, change status, priority and labels (member inboxes)",
        ),
        Permission(
            "labels.write", _ALL, "write", "Create labels, rename them, change their colour"
        ),
        Permission(
            "labels.delete",
            _SUPERVISORS,
            "write",
            "Delete labels (they leave every conversation that had them)",
        ),
        Permission("contacts.read", _ALL, "read", "See contacts who wrote to a member inbox"),
        Permission("contacts.write", _ALL, "write", "Create and edit contacts"),
        Permission("inboxes.read", _ALL, "read", "See member inboxes"),
        Permission("inboxes.manage", _ADMIN, "admin", "Connect channels, change credentials"),
        Permission(
            "webhook_deliveries.manage", _ADMIN, "admin", "See and replay stored webhook deliveries"
        ),
        Permission("account.self", _ALL, "read", "See and edit one's own profile, password, MFA"),
        Permission("sessions.own", _ALL, "read", "List one's sessions and sign them out"),
        Permission("tokens.own", _ALL, "write", "Create, list and revoke one's API tokens"),
        Permission("users.read", _ADMIN, "admin", "List people, their roles and inboxes"),
        Permission(
            "users.manage",
            _ADMIN,
            "admin",
            "Create people, change roles, deactivate, manage inbox membership",
        ),
        Permission(
            "users.security",
            _ADMIN,
            "admin",
            "End anyone's sessions, revoke anyone's tokens, reset a person's MFA",
        ),
        Permission("security.policy", _ADMIN, "admin", "Set the MFA policy"),
        Permission("audit.read", _ADMIN, "admin", "Read and export the audit trail"),
        Permission(
            "automation.read",
            _ALL,
            "read",
            "Use quick replies and message templates; see automation rules",
        ),
        Permission(
            "automation.manage",
            _SUPERVISORS,
            "write",
            "Edit automation rules, integrations, business hours, quick replies, templates",
        ),
        Permission(
            "routing.self", _ALL, "write", "Set one's own availability; see one's load and capacity"
        ),
        Permission(
            "routing.queue",
            _SUPERVISORS,
            "read",
            "See the live queue, each agent's load and status (member inboxes, own teams)",
        ),
        Permission(
            "routing.supervise",
            _SUPERVISORS,
            "write",
            "Reassign by hand (beyond capacity only with force); agents' capacity and languages",
        ),
        Permission(
            "routing.manage",
            _ADMIN,
            "admin",
            "Routing settings per inbox and organisation, routing rules",
        ),
        Permission("teams.read", _SUPERVISORS, "read", "See teams and their members"),
        Permission(
            "audit.team",
            _SUPERVISORS,
            "read",
            "Read the audit events of actions by members of the teams one supervises",
        ),
        Permission("teams.manage", _ADMIN, "admin", "Create, rename and delete teams"),
        Permission(
            "teams.members",
            _SUPERVISORS,
            "write",
            "Add and remove members of the teams one supervises (admins: any team)",
        ),
    )
}


def allowed(role: str, scopes: frozenset[str], permission: str) -> bool:
    rule = PERMISSIONS[permission]
    return role in rule.roles and rule.scope in scopes


def scopes_for_role(role: str) -> frozenset[str]:
    """The scopes a role may hold (web sessions get all of them; tokens at most these)."""
    return frozenset({"read", "write", "admin"} if role == "admin" else {"read", "write"})


def markdown_table() -> str:
    """The matrix as docs/permissions.md shows it (a test keeps the two identical)."""
    head = "| Permission | " + " | ".join(ROLES) + " | Token scope | What it allows |"
    rule = "|---|" + "---|" * len(ROLES) + "---|---|"
    rows = [
        f"| `{p.name}` | "
        + " | ".join("yes" if role in p.roles else "—" for role in ROLES)
        + f" | `{p.scope}` | {p.description} |"
        for p in PERMISSIONS.values()
    ]
    return "\n".join([head, rule, *rows])
