"""The conversation list's folders, filters, search, counts, read marker; sources."""

from __future__ import annotations

from sqlalchemy import update

from tests.conversations_api.util import audit, events, world
from tests.helpers import auth
from wadesk.contacts.models import Contact
from wadesk.conversations.models import Conversation


async def ids(live, token, **params) -> list[int]:
    response = await live.client.get("/api/v1/conversations", params=params, headers=auth(token))
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["items"]]


async def test_folders_filters_search_and_counts(live):
    w = await world(live, customers=4)
    c0, c1, c2, c3 = w["conversations"]
    agent_id, agent = w["agent"]
    _, admin = w["admin"]
    _, outsider = w["outsider"]
    await live.client.patch(
        f"/api/v1/conversations/{c0}", json={"assignee_id": agent_id}, headers=auth(admin)
    )
    await live.client.patch(
        f"/api/v1/conversations/{c1}",
        json={"assignee_id": agent_id, "priority": "urgent"},
        headers=auth(admin),
    )
    await live.client.patch(
        f"/api/v1/conversations/{c3}", json={"status": "resolved"}, headers=auth(admin)
    )
    assert sorted(await ids(live, agent, folder="mine")) == [c0, c1]
    assert sorted(await ids(live, agent, folder="unassigned")) == [c2, c3]
    assert sorted(await ids(live, agent, folder="unassigned", status="open")) == [c2]
    assert len(await ids(live, agent, folder="all")) == 4
    assert await ids(live, agent, priority="urgent") == [c1]
    assert await ids(live, agent, folder="mine", priority="low") == []
    # search: contact name, phone digits, message text; wildcards are literal
    assert await ids(live, agent, q="number 2") == [c2]
    assert await ids(live, agent, q="5511999900003") == [c3]
    assert await ids(live, agent, q="order 1") == [c1]
    assert await ids(live, agent, q="%") == []
    assert await ids(live, agent, q="nothing like it") == []
    assert await ids(live, outsider, q="order") == []
    # counts: open conversations per folder, and those with unread messages
    counts = (await live.client.get("/api/v1/conversations/counts", headers=auth(agent))).json()
    assert counts == {
        "mine": 2,
        "unassigned": 1,
        "all": 3,
        "mine_unread": 2,
        "unassigned_unread": 1,
        "all_unread": 3,
    }
    empty = (await live.client.get("/api/v1/conversations/counts", headers=auth(outsider))).json()
    assert set(empty.values()) == {0}
    # marking read: counter to 0, one event, no audit row; 404 for outsiders
    before = len(await events(live, "conversation.updated"))
    read = await live.client.post(f"/api/v1/conversations/{c0}/read", headers=auth(agent))
    assert read.status_code == 200 and read.json()["unread_count"] == 0
    again = await live.client.post(f"/api/v1/conversations/{c0}/read", headers=auth(agent))
    assert again.status_code == 200
    after = await events(live, "conversation.updated")
    assert len(after) == before + 1 and after[-1]["changes"] == ["unread_count"]
    assert await audit(live, "conversation.read") == []
    counts = (await live.client.get("/api/v1/conversations/counts", headers=auth(agent))).json()
    assert counts["mine_unread"] == 1 and counts["all_unread"] == 2
    hidden = await live.client.post(f"/api/v1/conversations/{c0}/read", headers=auth(outsider))
    assert hidden.status_code == 404
    # bad filters
    for params in ({"folder": "theirs"}, {"priority": "huge"}, {"q": "x" * 201}):
        bad = await live.client.get("/api/v1/conversations", params=params, headers=auth(agent))
        assert bad.status_code == 422 and bad.json()["error"]["message"], params


async def test_pages_with_filters_keep_their_cursor(live):
    w = await world(live, customers=5)
    _, agent = w["agent"]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "folder": "unassigned", "q": "order"}
        if cursor:
            params["cursor"] = cursor
        page = (
            await live.client.get("/api/v1/conversations", params=params, headers=auth(agent))
        ).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == w["conversations"]


async def test_the_conversation_shows_its_source_and_the_contact_first_and_last(live):
    w = await world(live, customers=1)
    [cid] = w["conversations"]
    _, agent = w["agent"]
    _, outsider = w["outsider"]
    source = {"type": "link", "link_id": 7, "slug": "promo-natal", "campaign": "xmas"}
    first = {"type": "ad", "ad": {"source_id": "123"}}
    async with live.runtime.db.session() as session:
        conversation = await session.get(Conversation, cid)
        await session.execute(
            update(Conversation).where(Conversation.id == cid).values(source=source)
        )
        await session.execute(
            update(Contact)
            .where(Contact.id == conversation.contact_id)
            .values(first_source=first, last_source=source)
        )
        contact_id = conversation.contact_id
    shown = (await live.client.get(f"/api/v1/conversations/{cid}", headers=auth(agent))).json()
    assert shown["source"] == source
    contact = (await live.client.get(f"/api/v1/contacts/{contact_id}", headers=auth(agent))).json()
    assert contact["first_source"] == first and contact["last_source"] == source
    # earlier conversations of the contact
    await live.client.patch(
        f"/api/v1/conversations/{cid}", json={"status": "resolved"}, headers=auth(agent)
    )
    history = await live.client.get(
        f"/api/v1/contacts/{contact_id}/conversations", headers=auth(agent)
    )
    assert history.status_code == 200
    [item] = history.json()["items"]
    assert item["id"] == cid and item["status"] == "resolved"
    assert item["last_message_preview"] == "hello order 0" and item["source"] == source
    denied = await live.client.get(
        f"/api/v1/contacts/{contact_id}/conversations", headers=auth(outsider)
    )
    assert denied.status_code == 404
