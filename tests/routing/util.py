"""Builders for the routing tests: an inbox, agents with tokens, customers writing in."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from tests.helpers import (
    auth,
    create_inbox,
    create_user,
    envelope,
    post_signed,
    settle,
    text_message,
)
from wadesk.conversations.models import Conversation
from wadesk.routing.models import QueueEntry

_wamids = itertools.count(1)


@dataclass
class World:
    inbox: dict[str, Any]
    admin: str  # token
    agents: dict[str, tuple[int, str]]  # name -> (user id, token)


async def world(live: Any, names: tuple[str, ...] = ("ana", "bo", "cy")) -> World:
    inbox = await create_inbox(live)
    _, admin = await create_user(live, email="admin@example.com", role="admin")
    agents = {}
    for name in names:
        agents[name] = await create_user(
            live,
            email=f"{name}@example.com",
            role="agent",
            scopes=("read", "write"),
            inbox_ids=(inbox["id"],),
        )
    return World(inbox, admin, agents)


async def set_online(live: Any, w: World, *names: str, availability: str = "online") -> None:
    for name in names:
        r = await live.client.put(
            "/api/v1/routing/me",
            json={"availability": availability},
            headers=auth(w.agents[name][1]),
        )
        assert r.status_code == 200, r.text


async def inbox_settings(live: Any, w: World, **values: Any) -> None:
    body = {
        "enabled": True,
        "strategy": "least_loaded",
        "capacity": None,
        "sticky_days": 0,
        "offline_behaviour": "keep",
        **values,
    }
    r = await live.client.put(
        f"/api/v1/routing/inboxes/{w.inbox['id']}", json=body, headers=auth(w.admin)
    )
    assert r.status_code == 200, r.text


async def config(live: Any, w: World, **values: Any) -> None:
    current = (await live.client.get("/api/v1/routing/config", headers=auth(w.admin))).json()
    r = await live.client.put(
        "/api/v1/routing/config", json={**current, **values}, headers=auth(w.admin)
    )
    assert r.status_code == 200, r.text


async def write_in(live: Any, w: World, wa_id: str, text: str = "hello") -> int:
    """A customer writes; returns the conversation id."""
    wamid = f"wamid.routing.{next(_wamids)}"
    r = await post_signed(
        live.client, w.inbox["webhook_url"], envelope([text_message(wa_id, wamid, text)])
    )
    assert r.status_code == 200
    await settle(live)
    from wadesk.conversations.models import Message

    async with live.runtime.db.session() as session:
        cid = await session.scalar(
            select(Message.conversation_id).where(Message.external_id == wamid)
        )
    assert cid is not None
    return int(cid)


async def assignee(live: Any, conversation_id: int) -> int | None:
    async with live.runtime.db.session() as session:
        return await session.scalar(
            select(Conversation.assignee_id).where(Conversation.id == conversation_id)
        )


async def queued(live: Any) -> list[int]:
    async with live.runtime.db.session() as session:
        rows = await session.scalars(
            select(QueueEntry.conversation_id).order_by(
                QueueEntry.rank.desc(), QueueEntry.enqueued_at, QueueEntry.conversation_id
            )
        )
        return list(rows.all())


async def loads(live: Any) -> dict[int, int]:
    async with live.runtime.db.session() as session:
        rows = await session.execute(
            select(Conversation.assignee_id, func.count())
            .where(Conversation.assignee_id.is_not(None), Conversation.status != "resolved")
            .group_by(Conversation.assignee_id)
        )
        return {int(u): int(n) for u, n in rows.tuples()}


async def resolve(live: Any, w: World, conversation_id: int, token: str | None = None) -> None:
    r = await live.client.patch(
        f"/api/v1/conversations/{conversation_id}",
        json={"status": "resolved"},
        headers=auth(token or w.admin),
    )
    assert r.status_code == 200, r.text
