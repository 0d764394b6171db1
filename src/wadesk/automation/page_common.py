"""Pieces shared by views.py and flow_views.py (views.py includes flow_views' router, so they
cannot live in views.py without an import cycle)."""

from __future__ import annotations

from typing import Annotated

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import SessionAuth
from wadesk.inboxes.models import Inbox
from wadesk.web.pages import signed_in

Manager = Annotated[SessionAuth, signed_in(permission="automation.manage")]
FLASH = {"saved": "Saved.", "created": "Created.", "deleted": "Deleted."}


async def visible_inboxes(session: AsyncSession, auth: SessionAuth) -> list[Inbox]:
    """The inboxes the signed-in user may see, by name."""
    query = select(Inbox).where(auth.principal.inbox_filter(Inbox.id)).order_by(Inbox.name)
    return list((await session.scalars(query)).all())
