"""Fault 4: Redis stopped during a session, with an agent's SSE stream on another process.

PostgreSQL plus this scenario's OWN `redis-server` on a spare port (never the shared 6379);
two `wadesk serve` processes with WADESK_REDIS_URL. An SSE client (`GET /api/v1/events`, as
an agent's browser) is connected to process B while customer messages arrive at process A
(Meta-like load, 50/s). Five seconds in, Redis is stopped for 10 s, then started again; when
it is back the client reconnects with `Last-Event-ID`, as a browser does. Result: every
message is stored; the client receives the `message.created` event of each, none twice.

Run `.venv/bin/python bench/faults/redis_outage.py [--quick] [--json]`.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    DEAD_URL,
    Db,
    Delivery,
    MetaSender,
    Outcome,
    ScenarioError,
    SimulatorServer,
    SseClient,
    deployment,
    free_port,
    log,
    message_body,
    parser,
    pct,
    run_scenario,
)

PREFIX = "wamid.ro."
RATE = 50.0
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise ScenarioError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def main(args) -> Outcome:  # type: ignore[no-untyped-def]
    outage = 10.0
    load_s = args.seconds or (25.0 if args.quick else 40.0)
    total = int(RATE * load_s)
    outcome = Outcome("redis_outage")
    sim = SimulatorServer(auto_read_seconds=None, webhook_retry_delays=())
    await sim.start()
    tmp = Path(tempfile.mkdtemp(prefix="wadesk-faults-redis-"))
    redis = RedisServer(free_port(), tmp)
    await redis.start()
    env = {"WADESK_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0"}
    try:
        async with deployment(args.pg_url, "wadesk_faults_redis", sim, extra_env=env) as dep:
            sim.register(dep.app_secret, DEAD_URL)
            a = await dep.serve("serve-a")
            b = await dep.serve("serve-b")
            assert a.port is not None and b.port is not None
            token = dep.admin_token()
            client = await SseClient.open(b.port, token)
            if await client.wait_open() != 200:
                raise ScenarioError(f"GET /api/v1/events answered {client.status}")
            sender = MetaSender(lambda: [a.port or 0], dep.webhook_path, dep.app_secret)

            async def outage_task() -> tuple[float, float]:
                nonlocal client
                await asyncio.sleep(5.0)
                log(f"stopping Redis on {redis.port} for {outage:.0f} s")
                redis.stop()
                down = time.time()
                await asyncio.sleep(outage)
                await redis.start()
                up = time.time()
                log("Redis is back; the client reconnects with Last-Event-ID")
                client = await client.reopen(b.port or 0, token)
                await client.wait_open()
                return down, up

            fault = asyncio.create_task(outage_task())
            log(f"load: {total:,} messages at {RATE:.0f}/s to serve-a; SSE on serve-b")
            await sender.run(
                (Delivery(message_body(f"{PREFIX}{i}", i % 300), f"{PREFIX}{i}")
                 for i in range(total)),
                RATE,
            )  # fmt: skip
            down, up = await fault
            sender.close()
            db = await Db.connect(dep.dsn)
            try:
                drained = await db.wait_drained(120)
                stored = await db.message_ids(PREFIX)
            finally:
                await db.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not set(stored) <= set(client.message_arrivals):
                await asyncio.sleep(0.25)
            client.close()
    finally:
        await sim.stop()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    sent_at = {d.key: d.first_sent for d in sender.deliveries}
    missing = len(set(stored) - set(client.message_arrivals))
    latency = {"before": [], "during": [], "after": []}  # type: dict[str, list[float]]
    for message_id, wamid in stored.items():
        arrived = client.message_arrivals.get(message_id)
        if arrived is None:
            continue
        sent = sent_at[wamid]
        phase = "before" if sent < down else "during" if sent < up else "after"
        latency[phase].append((arrived - sent) * 1000)
    outcome.figures = {
        "messages": total,
        "stored": len(stored),
        "sse_received": len(client.message_arrivals),
        "sse_missing": missing,
        "sse_duplicate_ids": client.duplicate_ids,
        "sse_message_repeats": client.message_repeats,
        "sse_resets": client.resets,
        "webhook_failures": {k: v for k, v in sender.statuses.items() if k != "200"},
        "outage_s": round(up - down, 1),
        **{f"sse_p50_ms_{k}": round(pct(v, 0.5), 1) for k, v in latency.items() if v},
        **{f"sse_max_ms_{k}": round(max(v), 1) for k, v in latency.items() if v},
        "drained": drained,
    }
    outcome.check("messages stored", f"all {total:,}", f"{len(stored):,}", len(stored) == total)
    outcome.check(
        "webhooks never answered 200",
        "0",
        f"{sender.given_up} ({sender.retried} retried)",
        sender.given_up == 0,
    )
    outcome.check(
        "SSE events received on the other process",
        "every message",
        f"{len(client.message_arrivals):,} ({missing} missing, {client.resets} resets)",
        missing == 0 and client.resets == 0,
    )
    outcome.check(
        "SSE events received twice",
        "0",
        str(client.duplicate_ids + client.message_repeats),
        client.duplicate_ids == 0 and client.message_repeats == 0,
    )
    outcome.check(
        "webhook → SSE p50 before / during / after the outage",
        "",
        " / ".join(f"{pct(v, 0.5):,.0f} ms" if v else "—" for v in latency.values()),
        None,
    )
    return outcome


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--seconds", type=float, default=0.0, help="of load")
    sys.exit(run_scenario(main, p.parse_args()))
