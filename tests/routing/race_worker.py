"""One of the processes of the concurrency test: several tasks that resolve conversations
(each resolve drains the queue in the same transaction, as in production) and drain the
queue directly, all at once, against the shared PostgreSQL database.

    python -m tests.routing.race_worker SECONDS TASKS
"""

from __future__ import annotations

import asyncio
import random
import sys
import time

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from wadesk.audit.actions import Actor
from wadesk.config import get_settings
from wadesk.conversations.actions import do_update_conversation
from wadesk.conversations.models import Conversation
from wadesk.db import Database
from wadesk.routing.actions import drain
from wadesk.routing.models import QueueEntry

ACTOR = Actor.system("race")


async def task(db: Database, until: float, stats: dict[str, int]) -> None:
    rng = random.Random()
    while time.monotonic() < until:
        try:
            async with db.session() as session:
                if rng.random() < 0.5:
                    stats["assigned"] += len(await drain(session, reason="race"))
                else:
                    conversation = await session.scalar(
                        select(Conversation)
                        .where(
                            Conversation.assignee_id.is_not(None),
                            Conversation.status != "resolved",
                        )
                        .order_by(func.random())
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    )
                    if conversation is not None:
                        await do_update_conversation(
                            session, actor=ACTOR, conversation=conversation, status="resolved"
                        )
                        stats["resolved"] += 1
                        # the freed slot was filled in this same transaction: its own rows
                        stats["assigned"] += (
                            await session.scalar(
                                text(
                                    "SELECT count(*) FROM audit_events"
                                    " WHERE action = 'routing.assign'"
                                    " AND xmin::text = (txid_current() % 4294967296)::text"
                                )
                            )
                            or 0
                        )
        except DBAPIError:
            stats["errors"] += 1  # a deadlock would show here; the test requires none
        async with db.session() as session:
            if await session.scalar(select(func.count()).select_from(QueueEntry)) == 0:
                return
        await asyncio.sleep(rng.random() * 0.01)


async def main(seconds: float, tasks: int) -> None:
    db = Database(get_settings())
    stats = {"assigned": 0, "resolved": 0, "errors": 0}
    until = time.monotonic() + seconds
    await asyncio.gather(*(task(db, until, stats) for _ in range(tasks)))
    await db.dispose()
    print(f"assigned={stats['assigned']} resolved={stats['resolved']} errors={stats['errors']}")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), int(sys.argv[2])))
