"""Fault 5: the Graph API fails in a mix: 500, 429, 131056, timeouts, undeliverable.

One `wadesk serve` (with its outbox worker) on PostgreSQL sends 400 text messages (200 with
--quick) to 100 customers through the simulator, whose fault plan answers about 10% of sends
with HTTP 500, 10% with 429 (130429), 5% with 131056 (pair rate), 5% with a reply later than
the client's timeout (the message accepted all the same, as Meta does), and fails 3% afterwards
with a 131026 status. Result: every message ends `delivered`/`read` or `failed` with a reason a
person can read; none reaches its customer twice (the late answers' statuses adopt the sends,
docs/decisions/0005-unanswered-sends.md); the sends the simulator
received (every attempt, accepted or not) never exceed the configured pace: in any window of
w seconds at most rate * (w + 50 ms of arrival jitter) + the bucket's capacity.

Run `.venv/bin/python bench/faults/graph_failures.py [--quick] [--json]`.
"""

from __future__ import annotations

import asyncio
import bisect
import sys
import time
from collections import Counter
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

from wadesk.channels.simulator.faults import FaultPlan

RATE = 20.0  # messages/s, WADESK_SEND_RATE_PER_NUMBER
CAPACITY = max(1.0, RATE)  # the number's token bucket (outbox/pacing.py)
# The bucket holds at the sender; the simulator counts arrivals, which reach it after a delay
# that varies by a few milliseconds (a sender window of w s can land in w - jitter s).
JITTER_S = 0.05
GRAPH_TIMEOUT_S = 2.0
PLAN = FaultPlan(
    http_500=0.10,
    rate_limit=0.10,
    pair_limit=0.05,
    timeout=0.05,
    timeout_seconds=4.0,
    timeout_accepts=True,
    undeliverable=0.03,
    seed=7,
)


def max_in_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0
    )


async def main(args) -> Outcome:  # type: ignore[no-untyped-def]
    total = args.messages or (200 if args.quick else 400)
    customers = 100
    outcome = Outcome("graph_failures")
    sim = SimulatorServer(auto_read_seconds=None, status_delay_seconds=0.05)
    await sim.start()
    env = {
        "WADESK_SEND_RATE_PER_NUMBER": str(RATE),
        "WADESK_GRAPH_TIMEOUT_SECONDS": str(GRAPH_TIMEOUT_S),
        "WADESK_OUTBOX_BACKOFF_BASE_SECONDS": "0.5",
        "WADESK_OUTBOX_BACKOFF_MAX_SECONDS": "4",
        "WADESK_OUTBOX_MAX_ATTEMPTS": "6",
        "WADESK_OUTBOX_LEASE_SECONDS": "20",
        "WADESK_OUTBOX_UNANSWERED_WAIT_SECONDS": "30",
    }
    try:
        async with deployment(
            args.pg_url, "wadesk_faults_graph_failures", sim, extra_env=env
        ) as dep:
            server = await dep.serve("serve")
            assert server.port is not None
            port = server.port
            sim.register(dep.app_secret, f"http://127.0.0.1:{port}{dep.webhook_path}")
            db = await Db.connect(dep.dsn)
            try:
                warm = MetaSender(lambda: [port], dep.webhook_path, dep.app_secret)
                await warm.run(
                    (
                        Delivery(message_body(f"wamid.gf.{i}", i), f"wamid.gf.{i}")
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
                sim.sim.set_faults(PLAN)
                sim.send_times.clear()
                log(f"{total} messages through the faulty Graph API, pace {RATE:.0f}/s")
                started = time.time()
                async with await api_client(port, dep.token) as client:
                    await create_outbound(client, conversations, total, "gf")
                deadline = time.monotonic() + 240
                statuses: Counter[str] = Counter()
                while time.monotonic() < deadline:
                    rows = await db.c.fetch(
                        "SELECT status, count(*) AS n FROM messages WHERE direction = 'out'"
                        " GROUP BY status"
                    )
                    statuses = Counter({r["status"]: int(r["n"]) for r in rows})
                    if sum(statuses[s] for s in ("delivered", "read", "failed")) >= total:
                        break
                    await asyncio.sleep(0.5)
                finished = time.time()
                without_reason = int(
                    await db.scalar(
                        "SELECT count(*) FROM messages WHERE direction = 'out'"
                        " AND status = 'failed' AND (error_title IS NULL OR error_title = '')"
                    )
                )
                reasons = {
                    r["error_code"]: int(r["n"])
                    for r in await db.c.fetch(
                        "SELECT error_code, count(*) AS n FROM messages"
                        " WHERE direction = 'out' AND status = 'failed' GROUP BY error_code"
                    )
                }
            finally:
                await db.close()
    finally:
        await sim.stop()

    stats = sim.sim.stats.to_dict()["sends"]
    times = list(sim.send_times)
    ended = sum(statuses[s] for s in ("delivered", "read", "failed"))
    worst = {w: max_in_window(times, w) for w in (1.0, 5.0)}
    within_pace = all(n <= RATE * (w + JITTER_S) + CAPACITY for w, n in worst.items())
    span = (max(times) - min(times)) if len(times) > 1 else 0.0
    outcome.figures = {
        "messages": total,
        "statuses": dict(statuses),
        "failed_by_code": reasons,
        "failed_without_reason": without_reason,
        "attempts": len(times),
        "simulator": stats,
        "max_sends_1s": worst[1.0],
        "max_sends_5s": worst[5.0],
        "mean_send_rate": round(len(times) / span, 2) if span else None,
        "pace_per_s": RATE,
        "elapsed_s": round(finished - started, 1),
    }
    outcome.check(
        "messages ended delivered or failed",
        f"all {total}",
        f"{ended} ({dict(statuses)})",
        ended == total,
    )
    outcome.check("failed without a reason", "0", str(without_reason), without_reason == 0)
    copies = int(sim.sim.stats.to_dict()["max_copies"])
    outcome.check(
        "copies of a message the customer got",
        "1",
        f"{copies} ({stats['timeouts']} answers later than the {GRAPH_TIMEOUT_S:g} s timeout)",
        copies == 1,
    )
    outcome.check(
        "sends in any 1 s / 5 s window",
        f"≤ {RATE * (1 + JITTER_S) + CAPACITY:.0f} / ≤ {RATE * (5 + JITTER_S) + CAPACITY:.0f}"
        f" (pace + bucket + {JITTER_S * 1000:.0f} ms arrival jitter)",
        f"{worst[1.0]} / {worst[5.0]} ({len(times)} attempts, {stats['rejected']} rejected,"
        f" {stats['timeouts']} timeouts)",
        within_pace,
    )
    return outcome


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--messages", type=int, default=0)
    sys.exit(run_scenario(main, p.parse_args()))
