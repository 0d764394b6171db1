"""PostgreSQL IN lists as one array parameter (wadesk/pgarrays.py): the SQL text does not
change with the number of values, results do not change, and what is not a plain list of
ids or keys keeps SQLAlchemy's own IN."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, tuple_

from tests.helpers import PHONE_NUMBER_ID, create_inbox, settle
from wadesk.conversations.models import Conversation, Message
from wadesk.pgarrays import among


def _sql(live, statement) -> str:
    return str(statement.compile(live.runtime.db.engine.sync_engine))


async def test_in_lists_have_one_text_and_the_right_rows(live):
    if live.runtime.db.is_sqlite:
        pytest.skip("SQLite keeps IN lists (no arrays; nothing prepared across statements)")
    await create_inbox(live)
    for n in range(3):
        await live.simulator.customer_sends(
            PHONE_NUMBER_ID, f"55119876500{n:02d}", "C", {"type": "text", "text": f"m{n}"}
        )
    await settle(live)
    async with live.runtime.db.session() as session:
        ids = sorted((await session.scalars(select(Conversation.id))).all())
        texts = set()
        # The same statement shape with 1, 2, 3, 0 values and a set: the compiled statement
        # is cached after the first; each run must still use its own values.
        for values in ([ids[0]], ids[:2], ids, [], {ids[2]}):
            statement = select(Conversation.id).where(Conversation.id.in_(values))
            texts.add(_sql(live, statement))
            assert sorted((await session.scalars(statement)).all()) == sorted(values)
        assert len(texts) == 1 and "= ANY (" in texts.pop()
        # (by text, not by position: two processing rounds may store them out of order)
        wamid = await session.scalar(select(Message.external_id).where(Message.text == "m1"))
        by_key = select(Message.text).where(Message.external_id.in_([wamid, "nope"]))
        assert (await session.scalars(by_key)).all() == ["m1"]
        # A list given at execution time.
        late = select(Conversation.id).where(Conversation.id.in_(bindparam("ids", expanding=True)))
        assert sorted((await session.scalars(late, {"ids": ids[1:]})).all()) == ids[1:]
        # Left as SQLAlchemy writes them: NOT IN, tuples, subqueries, literal rendering.
        not_in = select(Conversation.id).where(Conversation.id.not_in(ids[:1]))
        assert "NOT IN" in _sql(live, not_in)
        assert sorted((await session.scalars(not_in)).all()) == ids[1:]
        pairs = select(Conversation.id).where(
            tuple_(Conversation.id, Conversation.inbox_id).in_([(ids[0], 1), (ids[1], 99)])
        )
        assert "= ANY" not in _sql(live, pairs)
        sub = select(Conversation.id).where(
            Conversation.id.in_(select(Conversation.id).where(Conversation.id > ids[0]))
        )
        assert sorted((await session.scalars(sub)).all()) == ids[1:]
        literal = select(Conversation.id).where(Conversation.id.in_([1, 2]))
        compiled = literal.compile(
            live.runtime.db.engine.sync_engine, compile_kwargs={"literal_binds": True}
        )
        assert "IN (1, 2)" in str(compiled)


async def test_a_statement_built_once_takes_each_runs_list(live):
    """``among``: the claims' statements are module constants run with lists of any size."""
    await create_inbox(live)
    for n in range(3):
        await live.simulator.customer_sends(
            PHONE_NUMBER_ID, f"55119876510{n:02d}", "C", {"type": "text", "text": f"m{n}"}
        )
    await settle(live)
    once = select(Message.text).where(among(Message.external_id, "wamids"))
    if not live.runtime.db.is_sqlite:
        assert "= ANY (" in _sql(live, once)
    async with live.runtime.db.session() as session:
        text_of = dict((await session.execute(select(Message.external_id, Message.text))).all())
        wamids = sorted(text_of)
        for chosen in (wamids, wamids[:1], [], [wamids[2], "nope"]):
            got = (await session.scalars(once, {"wamids": chosen})).all()
            assert sorted(got) == sorted(text_of[w] for w in chosen if w in text_of)
