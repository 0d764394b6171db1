"""Fault 1: kill -9 of a server process in the middle of a burst of inbound messages.

Two `wadesk serve` processes on PostgreSQL take a burst of signed single-message webhooks
(10,000; 3,000 with --quick) from a load generator that behaves like Meta: anything not
answered 200 is sent again, to the other server in turn. Mixed into the burst are the
`delivered` and `read` statuses of outbound messages sent before it. Some 40% into the burst
one server is killed with SIGKILL and started again. Result: exactly N messages, none twice,
every status applied (each outbound message ends `read`).

Run `.venv/bin/python bench/faults/kill_server.py [--quick] [--json]`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    DEAD_URL,
    FIRST_WA_ID,
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
    status_body,
    wait_ready,
)

PREFIX = "wamid.ks."


async def main(args) -> Outcome:  # type: ignore[no-untyped-def]
    total = args.messages or (3000 if args.quick else 10000)
    outbound = 100 if args.quick else 200
    customers = max(outbound, total // 10)
    outcome = Outcome("kill_server")
    sim = SimulatorServer(auto_read_seconds=None, webhook_retry_delays=(), status_delay_seconds=0)
    await sim.start()
    try:
        async with deployment(args.pg_url, "wadesk_faults_kill_server", sim) as dep:
            sim.register(dep.app_secret, DEAD_URL)  # statuses come from the load, not from it
            a = await dep.serve("serve-a")
            b = await dep.serve("serve-b")
            assert a.port is not None and b.port is not None
            ports = [a.port, b.port]
            db = await Db.connect(dep.dsn)
            try:
                # Before the burst: one message from each of `outbound` customers, answered once.
                log(f"setup: {outbound} conversations, {outbound} outbound messages")
                warm = MetaSender(lambda: ports, dep.webhook_path, dep.app_secret)
                await warm.run(
                    (
                        Delivery(message_body(f"wamid.pre.{i}", i), f"wamid.pre.{i}")
                        for i in range(outbound)
                    ),
                    rate=200,
                )
                warm.close()
                log(f"warm-up answered: {dict(warm.statuses)}")
                await db.wait_drained(60)
                log("drained; token")
                dep.admin_token()
                conversations = [
                    int(r["id"])
                    for r in await db.c.fetch("SELECT id FROM conversations ORDER BY id")
                ]
                async with await api_client(a.port, dep.token) as client:
                    await create_outbound(client, conversations, outbound, "ks-out")
                log("outbound created")
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    sent = await db.scalar(
                        "SELECT count(*) FROM messages WHERE direction = 'out'"
                        " AND external_id IS NOT NULL"
                    )
                    if sent >= outbound:
                        break
                    await asyncio.sleep(0.5)
                sent_wamids = [
                    (wamid, int(m.wa_id) - FIRST_WA_ID)
                    for wamid, m in sim.sim.messages.items()
                    if m.sender == "business"
                ]
                if len(sent_wamids) < outbound:
                    outcome.notes.append(f"only {len(sent_wamids)} outbound sent before the burst")

                # The burst: messages, with the outbound messages' statuses spread through it.
                deliveries = [
                    Delivery(message_body(f"{PREFIX}{i}", i % customers), f"{PREFIX}{i}")
                    for i in range(total)
                ]
                step = max(1, total // (2 * len(sent_wamids) + 1))
                position = step
                for status in ("delivered", "read"):
                    for wamid, customer in sent_wamids:
                        deliveries.insert(
                            min(position, len(deliveries)),
                            Delivery(status_body(wamid, customer, status), wamid),
                        )
                        position += step + 1
                rate = args.rate or (300.0 if args.quick else 400.0)
                sender = MetaSender(lambda: ports, dep.webhook_path, dep.app_secret)
                kill_at = 0.4 * len(deliveries) / rate
                log(f"burst: {len(deliveries):,} at {rate:.0f}/s; kill at {kill_at:.0f} s")

                async def killer() -> tuple[float, float]:
                    await asyncio.sleep(kill_at)
                    log(f"kill -9 serve-b (pid {b.pid})")
                    killed = time.time()
                    b.kill9()
                    await asyncio.sleep(1.0)
                    b.start()
                    await wait_ready(b)
                    log("serve-b is back")
                    return killed, time.time()

                started = time.time()
                kill_task = asyncio.create_task(killer())
                await sender.run(deliveries, rate)
                killed_at, back_at = await kill_task
                answered_s = time.time() - started
                sender.close()
                drained = await db.wait_drained(120)

                stored = await db.messages_like(PREFIX)
                distinct = len(stored)
                twice = sum(1 for n in stored.values() if n > 1)
                not_read = await db.scalar(
                    "SELECT count(*) FROM messages WHERE direction = 'out' AND status <> 'read'"
                )
                parked = await db.scalar("SELECT count(*) FROM pending_statuses")
                unprocessable = await db.scalar(
                    "SELECT count(*) FROM webhook_deliveries WHERE status = 'unprocessable'"
                )
            finally:
                await db.close()
    finally:
        await sim.stop()

    failed_attempts = {k: v for k, v in sender.statuses.items() if k != "200"}
    outcome.figures = {
        "messages": total,
        "status_deliveries": 2 * len(sent_wamids),
        "stored": distinct,
        "stored_twice": twice,
        "outbound_not_read": int(not_read),
        "statuses_parked": int(parked),
        "unprocessable": int(unprocessable),
        "deliveries_retried": sender.retried,
        "given_up": sender.given_up,
        "failed_attempts": failed_attempts,
        "kill_at_s": round(killed_at - started, 2),
        "restart_s": round(back_at - killed_at, 2),
        "burst_s": round(answered_s, 2),
        "drained": drained,
    }
    outcome.check("messages stored", f"exactly {total:,}", f"{distinct:,}", distinct == total)
    outcome.check("messages stored twice", "0", str(twice), twice == 0)
    outcome.check(
        "statuses applied",
        f"{len(sent_wamids)} messages read",
        f"{len(sent_wamids) - int(not_read)} read, {int(parked)} parked",
        int(not_read) == 0 and int(parked) == 0 and len(sent_wamids) == outbound,
    )
    outcome.check("deliveries never answered 200", "0", str(sender.given_up), sender.given_up == 0)
    outcome.check(
        "retried by the sender (kill -9)",
        "",
        f"{sender.retried:,} deliveries; failed attempts {failed_attempts}",
        None,
    )
    outcome.check("backlog drained", "yes", "yes" if drained else "no", drained)
    return outcome


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--messages", type=int, default=0)
    p.add_argument("--rate", type=float, default=0.0)
    sys.exit(run_scenario(main, p.parse_args()))
