"""The permission matrix: one table in code, the same table in docs/permissions.md."""

from __future__ import annotations

from pathlib import Path

from wadesk.accounts.access import Principal
from wadesk.accounts.models import ROLES
from wadesk.accounts.permissions import PERMISSIONS, allowed, markdown_table, scopes_for_role

DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


def test_docs_show_exactly_the_matrix_the_code_enforces():
    text = DOC.read_text()
    start = text.index("<!-- generated from accounts/permissions.py: markdown_table() -->")
    end = text.index("<!-- end of generated matrix -->")
    shown = text[start:end].split("\n", 1)[1].strip()
    assert shown == markdown_table(), "regenerate the matrix in docs/permissions.md"


def test_a_permission_needs_both_the_role_and_the_scope():
    for name, rule in PERMISSIONS.items():
        for role in ROLES:
            full = scopes_for_role(role)
            assert allowed(role, full, name) == (role in rule.roles and rule.scope in full)
            assert not allowed(role, full - {rule.scope}, name)


def test_only_admins_hold_admin_permissions_even_with_an_admin_scope_token():
    for role in ("supervisor", "agent"):
        principal = Principal(1, role, frozenset({"read", "write", "admin"}), 1, frozenset())
        assert not principal.can("users.manage")
        assert not principal.can("audit.read")
        assert principal.can("conversations.write")
    admin = Principal(1, "admin", frozenset({"read"}), 1, None)
    assert admin.can("conversations.read") and not admin.can("users.manage")
