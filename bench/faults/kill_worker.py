"""Fault 2: kill -9 of a `wadesk worker` in the middle of 2,000 outbound sends.

One `wadesk serve` (HTTP only, WADESK_RUN_WORKER_IN_SERVER=0) and two `wadesk worker`
processes on PostgreSQL; 2,000 text messages (600 with --quick) are queued through the API
while the workers are stopped, then the workers start and, about half-way, one is killed with
SIGKILL and started again. The simulator (the Graph API, in this process) records every send
it accepted and sends its statuses to the server's webhook, as Meta does. Result: every
message sent (none lost); any message the simulator received twice is counted and reported.
Only a send in flight at the kill could be, and its status adopts it before the lease runs
out (docs/decisions/0005-unanswered-sends.md), so the target is none.

Run `.venv/bin/python bench/faults/kill_worker.py [--quick] [--json]`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Db,
    Delivery,
    MetaSender,
    Outcome,
    SimulatorServer,
    api_client,
    create_outbound,
    deployment,
    log,
    message_body,
    parser,
    run_scenario,
)

LEASE_S = 10.0
RATE_PER_WORKER = 50.0


async def main(args) -> Outcome:  # type: ignore[no-untyped-def]
    total = args.messages or (600 if args.quick else 2000)
    customers = 200
    outcome = Outcome("kill_worker")
    sim = SimulatorServer(auto_read_seconds=None, webhook_retry_delays=(), status_delay_seconds=0)
    await sim.start()
    env = {
        "WADESK_RUN_WORKER_IN_SERVER": "0",
        "WADESK_OUTBOX_LEASE_SECONDS": str(LEASE_S),
        "WADESK_SEND_RATE_PER_NUMBER": str(RATE_PER_WORKER),
    }
    try:
        async with deployment(args.pg_url, "wadesk_faults_kill_worker", sim, extra_env=env) as dep:
            server = await dep.serve("serve")
            assert server.port is not None
            port = server.port
            sim.register(dep.app_secret, f"http://127.0.0.1:{port}{dep.webhook_path}")
            db = await Db.connect(dep.dsn)
            try:
                log(f"setup: {customers} conversations, {total:,} messages queued")
                warm = MetaSender(lambda: [port], dep.webhook_path, dep.app_secret)
                await warm.run(
                    (
                        Delivery(message_body(f"wamid.kw.{i}", i), f"wamid.kw.{i}")
                        for i in range(customers)
                    ),
                    rate=200,
                )
                warm.close()
                await db.wait_drained(60)
                dep.admin_token()
                conversations = [
                    int(r["id"])
                    for r in await db.c.fetch("SELECT id FROM conversations ORDER BY id")
                ]
                async with await api_client(port, dep.token) as client:
                    await create_outbound(client, conversations, total, "kw")
                log("workers start")
                started = time.time()
                workers = [dep.worker("worker-1"), dep.worker("worker-2")]
                victim = workers[1]
                killed_at = back_at = 0.0
                in_flight_at_kill = 0
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    sent = int(
                        await db.scalar(
                            "SELECT count(*) FROM messages WHERE direction = 'out'"
                            " AND status <> 'queued'"
                        )
                    )
                    if not killed_at and sent >= total // 2:
                        in_flight_at_kill = int(
                            await db.scalar(
                                "SELECT count(*) FROM outbox WHERE state = 'pending'"
                                " AND lease_owner IS NOT NULL"
                            )
                        )
                        log(f"kill -9 worker-2 (pid {victim.pid}) at {sent} sent")
                        killed_at = time.time()
                        victim.kill9()
                        await asyncio.sleep(1.0)
                        victim.start()
                        back_at = time.time()
                    if sent >= total:
                        break
                    await asyncio.sleep(0.2)
                finished = time.time()
                pending = int(
                    await db.scalar("SELECT count(*) FROM outbox WHERE state = 'pending'")
                )
                failed = int(
                    await db.scalar(
                        "SELECT count(*) FROM messages WHERE direction = 'out'"
                        " AND status = 'failed'"
                    )
                )
                not_sent = int(
                    await db.scalar(
                        "SELECT count(*) FROM messages WHERE direction = 'out'"
                        " AND status IN ('queued', 'failed')"
                    )
                )
            finally:
                await db.close()
    finally:
        await sim.stop()

    copies = sim.copies()
    received = sum(1 for text in copies if text.startswith("kw-"))
    twice = sum(1 for text, n in copies.items() if text.startswith("kw-") and n > 1)
    outcome.figures = {
        "messages": total,
        "sent": total - not_sent,
        "received_by_simulator": received,
        "sent_twice": twice,
        "claimed_when_killed": in_flight_at_kill,
        "failed": failed,
        "outbox_pending": pending,
        "kill_at_s": round(killed_at - started, 2) if killed_at else None,
        "restart_s": round(back_at - killed_at, 2) if killed_at else None,
        "all_sent_s": round(finished - started, 2),
        "lease_s": LEASE_S,
    }
    outcome.check("worker killed mid-way", "yes", "yes" if killed_at else "no", bool(killed_at))
    outcome.check("messages lost", "0", str(total - received), received == total and not_sent == 0)
    outcome.check(
        "messages sent twice",
        "0 (a send in flight at the kill is adopted by its status)",
        f"{twice} (of {in_flight_at_kill} claimed at the kill)",
        twice == 0,
    )
    outcome.check(
        "time to send all",
        "",
        f"{finished - started:.1f} s at {RATE_PER_WORKER:.0f}/s per worker, lease {LEASE_S:.0f} s",
        None,
    )
    return outcome


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--messages", type=int, default=0)
    sys.exit(run_scenario(main, p.parse_args()))
