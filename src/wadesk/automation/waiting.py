"""The sweep behind the "waiting" trigger: every ``automation_waiting_sweep_seconds`` it
queues automation jobs for conversations whose customer waits too long for a reply
(``automation.actions.queue_waiting_jobs``), and ends the guided flows whose customer went
silent past the flow's time-out (``do_expire_flows``). Every process runs the loop; the lease
``automation-waiting`` makes one of them do each round, so a job is never queued twice by
two processes at once (the worker then runs it like any other job)."""

from __future__ import annotations

from datetime import datetime

import structlog

from wadesk.automation.actions import do_expire_flows, queue_waiting_jobs
from wadesk.background import BackgroundLoop
from wadesk.config import Settings
from wadesk.db import Database
from wadesk.leases import run_if_leader

log = structlog.get_logger(__name__)

LEASE = "automation-waiting"


async def sweep_waiting(db: Database, now: datetime | None = None) -> int | None:
    """One round: the number of jobs queued, or None when another process holds the lease."""

    async def work() -> int:
        async with db.session() as session:
            queued = await queue_waiting_jobs(session, now)
            await do_expire_flows(session, now)
            return queued

    return await run_if_leader(db, LEASE, work)


class WaitingSweeper(BackgroundLoop):
    name = "automation.waiting"

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__()
        self.db = db
        self.idle_seconds = settings.automation_waiting_sweep_seconds

    async def run_once(self) -> int:
        queued = await sweep_waiting(self.db)
        if queued:
            log.info("automation.waiting_queued", jobs=queued)
        return 0  # a round that queued jobs needs no second one at once
