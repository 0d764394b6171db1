"""Fault 3: PostgreSQL stopped for 30 s (10 s with --quick) during inbound load.

Runs its OWN throwaway PostgreSQL cluster (initdb in a temporary directory, a spare port;
never the shared server on 5432), one `wadesk serve` on it, and Meta-like inbound load at
100 messages/s that retries anything not answered 200. Five seconds in, the cluster is
stopped (`pg_ctl stop -m fast`), then started again. `/readyz` is probed twice a second.
Result: webhooks answer 503 (with Retry-After) while the database is away, `/readyz` fails,
every delivery that got 200 is stored exactly once, and wadesk recovers by itself.

Run `.venv/bin/python bench/faults/db_outage.py [--quick] [--json]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
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
    deployment,
    free_port,
    http_status,
    log,
    message_body,
    parser,
    run_scenario,
)

PG_BIN = Path(os.environ.get("FAULTS_PG_BIN", "/usr/lib/postgresql/15/bin"))
PREFIX = "wamid.dbo."
RATE = 100.0


class Cluster:
    """A throwaway PostgreSQL cluster on a spare port, run as the postgres user if we are root."""

    def __init__(self, root: Path, port: int) -> None:
        self.data = root / "data"
        self.port = port
        self.log = root / "postgresql.log"
        self.root = root

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, check=False, cwd=self.root
        )
        if done.returncode != 0:
            raise ScenarioError(f"{argv[0]} failed: {done.stdout}\n{done.stderr}")

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N"
        )

    def start(self) -> None:
        # autovacuum_naptime=5 s (default 1 min): the festival's tables grow from nothing to
        # 150,000 rows, and until autovacuum's first ANALYZE the planner's estimates are of
        # empty tables; with the default, latency grew through the first minute of every run.
        options = (
            f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c autovacuum_naptime=5"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="wadesk-faults-pg-"))
    pg = Cluster(root, free_port())
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        with contextlib.suppress(ScenarioError):
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


async def main(args) -> Outcome:  # type: ignore[no-untyped-def]
    outage = args.outage or (10.0 if args.quick else 30.0)
    load_s = outage + 15.0
    total = int(RATE * load_s)
    outcome = Outcome("db_outage")
    sim = SimulatorServer(auto_read_seconds=None, webhook_retry_delays=())
    await sim.start()
    probes: list[tuple[float, int | None]] = []
    try:
        with cluster() as pg:
            pg_url = f"postgresql://postgres@127.0.0.1:{pg.port}"
            async with deployment(pg_url, "wadesk_faults_db_outage", sim) as dep:
                sim.register(dep.app_secret, DEAD_URL)
                server = await dep.serve("serve")
                assert server.port is not None
                port = server.port
                sender = MetaSender(lambda: [port], dep.webhook_path, dep.app_secret)
                attempts: list[tuple[float, str]] = []
                original = sender._attempt

                async def recorded(p: int, body: bytes) -> str:
                    result = await original(p, body)
                    attempts.append((time.time(), result))
                    return result

                sender._attempt = recorded  # type: ignore[method-assign]
                stopping = asyncio.Event()

                async def prober() -> None:
                    while not stopping.is_set():
                        probes.append((time.time(), await http_status(port, "/readyz", 1.0)))
                        await asyncio.sleep(0.5)

                async def outage_task() -> tuple[float, float, float]:
                    await asyncio.sleep(5.0)
                    log(f"stopping PostgreSQL on {pg.port} for {outage:.0f} s")
                    await asyncio.to_thread(pg.stop)
                    down = time.time()
                    await asyncio.sleep(outage)
                    # Until here the database is certainly down; pg_ctl's answer (``up``)
                    # comes some time after it accepts connections again.
                    restarting = time.time()
                    await asyncio.to_thread(pg.start)
                    up = time.time()
                    log("PostgreSQL is back")
                    return down, restarting, up

                probe = asyncio.create_task(prober())
                fault = asyncio.create_task(outage_task())
                log(f"load: {total:,} messages at {RATE:.0f}/s")
                await sender.run(
                    (Delivery(message_body(f"{PREFIX}{i}", i % 500), f"{PREFIX}{i}")
                     for i in range(total)),
                    RATE,
                )  # fmt: skip
                down, restarting, up = await fault
                await asyncio.sleep(2.0)
                stopping.set()
                await probe
                sender.close()
                db = await Db.connect(dep.dsn)
                try:
                    drained = await db.wait_drained(120)
                    stored = await db.messages_like(PREFIX)
                finally:
                    await db.close()
    finally:
        await sim.stop()

    accepted = {d.key for d in sender.deliveries if d.accepted_at}
    lost = len(accepted - set(stored))
    twice = sum(1 for n in stored.values() if n > 1)
    during = Counter(outcome_ for at, outcome_ in attempts if down + 0.5 <= at <= restarting)
    after_up = sorted(at for at, o in attempts if at > up and o == "200")
    ready_fail = [at for at, status in probes if status != 200]
    ready_after = [at for at, status in probes if at > up and status == 200]
    answered_during = sum(during.values())
    share_503 = during.get("503", 0) / answered_during if answered_during else 0.0
    webhook_recovery = (after_up[0] - up) if after_up else float("nan")
    ready_recovery = (ready_after[0] - up) if ready_after else float("nan")
    outcome.figures = {
        "messages": total,
        "outage_s": round(up - down, 1),
        "answers_during_outage": dict(during),
        "share_503_during_outage": round(share_503, 3),
        "readyz_failures": len(ready_fail),
        "readyz_failing_s": round(max(ready_fail) - min(ready_fail), 1) if ready_fail else 0,
        "webhook_recovery_s": round(webhook_recovery, 2),
        "readyz_recovery_s": round(ready_recovery, 2),
        "accepted": len(accepted),
        "stored": len(stored),
        "lost": lost,
        "stored_twice": twice,
        "given_up": sender.given_up,
        "drained": drained,
    }
    outcome.check(
        "webhooks answered 503 while the DB was down",
        "503 (Meta retries)",
        f"{share_503:.0%} of {answered_during:,} answers ({dict(during)})",
        answered_during > 0 and share_503 >= 0.95,
    )
    outcome.check(
        "/readyz failed while the DB was down",
        "fails",
        f"{len(ready_fail)} failed probes over {outcome.figures['readyz_failing_s']} s",
        bool(ready_fail),
    )
    outcome.check("accepted (200) but lost", "0", str(lost), lost == 0)
    outcome.check("stored twice", "0", str(twice), twice == 0)
    outcome.check(
        "messages stored after recovery",
        f"all {total:,}",
        f"{len(stored):,}",
        len(stored) == total and drained,
    )
    outcome.check(
        "recovery after the DB returned (webhook 200 / readyz 200)",
        "by itself",
        f"{webhook_recovery:.1f} s / {ready_recovery:.1f} s",
        bool(after_up) and bool(ready_after),
    )
    return outcome


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--outage", type=float, default=0.0, help="seconds without PostgreSQL")
    sys.exit(run_scenario(main, p.parse_args()))
