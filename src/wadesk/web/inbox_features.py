"""Which optional server features exist, so the inbox shows only controls that work.

Private notes, outbound uploads, label management, mark-as-read and message templates are built
in their own domains; a control appears in the page only when its API route is registered.
"""

from __future__ import annotations

from typing import Any

ROUTES = {
    "notes": ("POST", "/api/v1/conversations/{conversation_id}/notes"),
    "uploads": ("POST", "/api/v1/uploads"),
    "labels": ("GET", "/api/v1/labels"),
    "mark_read": ("POST", "/api/v1/conversations/{conversation_id}/read"),
    "templates": ("GET", "/api/v1/message-templates"),
}


def available(app: Any) -> frozenset[str]:
    """The features whose routes the application has (computed once per application)."""
    known: frozenset[str] | None = getattr(app.state, "inbox_features", None)
    if known is not None:
        return known
    from fastapi.routing import iter_route_contexts

    present: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        for method in context.methods or ():
            present.add((method, str(context.path)))
    known = frozenset(name for name, key in ROUTES.items() if key in present)
    app.state.inbox_features = known
    return known
