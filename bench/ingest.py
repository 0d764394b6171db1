"""Inbound webhook benchmark: signed single-message webhooks from distinct customers.

Sets everything up itself: a fresh PostgreSQL database, migrations, a WhatsApp inbox, and
`wadesk serve --workers 2` on a free port; and, in the same run, the ceiling: a bare ASGI app
under the same uvicorn that only checks the signature (bench/ceiling_app.py). Phases:

1. ceiling: the most the bare app accepts, closed loop;
2. max: wadesk at full offered load, closed loop; accepted deliveries/s, then, once the
   backlog is drained, processed messages/s = messages committed / (first send -> last commit);
3. latency: a fixed rate (500/s): webhook p50/p99 and webhook -> message-committed p99;
4. sustained: a fixed rate (1,000/s) for 60 s, sampling the backlog every second (requests
   due but not yet answered, plus deliveries stored but not yet processed): does it grow?

Run with `make bench` or `.venv/bin/python bench/ingest.py [--quick] [--json]`; see
docs/benchmarks.md for what each figure means. The exit status is 0 when every target is met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import math
import os
import platform
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import asyncpg
import orjson
import uvloop
from rich.console import Console
from rich.table import Table

from loadgen import LoadResult, RequestFactory, closed_loop, open_loop, percentile
from servers import (
    HOST,
    CpuTimes,
    Server,
    ServerError,
    cpu_times,
    free_port,
    run_command,
    serving,
)

BENCH_DIR = Path(__file__).resolve().parent
WADESK = Path(sys.executable).with_name("wadesk")
PHONE_NUMBER_ID = "123456"
WABA_ID = "654321"
FIRST_WA_ID = 447700000000  # UK mobile numbers: one canonical key each (no 9th-digit rules)
WAMID_PREFIX = "wamid.bench."
WARMUP_SECONDS = 2.0
BACKLOG_SAMPLE_S = 1.0
DRAIN_POLL_S = 0.1
GROWTH_TOLERANCE = 0.01  # of the offered rate, in deliveries/s of backlog slope
ACCEPTED_RATE_TOLERANCE = 0.95  # of the offered rate, for the sustained phase
BACKGROUND_SAMPLE_S = 2.0
BACKGROUND_WARNING = 0.15
WIDE_OUTPUT = 180  # columns, when stdout is not a terminal

NO_CPU = CpuTimes(0.0, 0.0, 0.0, 0.0)
CORES = os.cpu_count() or 1

TARGET_PROCESSED_PER_S = 1000.0
TARGET_CEILING_RATIO = 0.40
TARGET_WEBHOOK_P99_MS = 50.0

console = Console(stderr=True)


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    pg_url: str
    database: str
    concurrency: int
    ceiling_seconds: float
    max_seconds: float
    latency_seconds: float
    latency_rate: float
    sustain_seconds: float
    sustain_rate: float
    drain_timeout: float
    json: bool
    markdown: bool

    @property
    def admin_dsn(self) -> str:
        return f"{self.pg_url}/postgres"

    @property
    def bench_dsn(self) -> str:
        return f"{self.pg_url}/{self.database}"

    @property
    def sqlalchemy_url(self) -> str:
        return self.bench_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def parse_args(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (~40 s in all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--markdown", action="store_true", help="tables in Markdown")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="wadesk_bench", help="dropped and re-created")
    parser.add_argument("--concurrency", type=int, default=64, help="connections at most")
    parser.add_argument("--ceiling-seconds", type=float)
    parser.add_argument("--max-seconds", type=float)
    parser.add_argument("--latency-seconds", type=float)
    parser.add_argument("--latency-rate", type=float, default=500.0, help="messages/s")
    parser.add_argument("--sustain-seconds", type=float)
    parser.add_argument("--sustain-rate", type=float, default=1000.0, help="messages/s")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="s, per phase")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.database):
        parser.error("--database: lower-case letters, digits and underscores only")
    durations = (3.0, 5.0, 5.0, 15.0) if args.quick else (15.0, 20.0, 20.0, 60.0)
    given = (args.ceiling_seconds, args.max_seconds, args.latency_seconds, args.sustain_seconds)
    ceiling, maximum, latency, sustain = (
        default if value is None else value for value, default in zip(given, durations, strict=True)
    )
    return Settings(
        pg_url=args.pg_url.rstrip("/"),
        database=args.database,
        concurrency=args.concurrency,
        ceiling_seconds=ceiling,
        max_seconds=maximum,
        latency_seconds=latency,
        latency_rate=args.latency_rate,
        sustain_seconds=sustain,
        sustain_rate=args.sustain_rate,
        drain_timeout=args.drain_timeout,
        json=args.json,
        markdown=args.markdown,
    )


# --- payloads -------------------------------------------------------------------------------


class Payloads:
    """Signed single-message webhooks, each from a customer no earlier webhook came from.

    The message id of request ``index`` of phase ``name`` is ``wamid.bench.<name>.<index>``,
    which is how a committed message is matched with the moment it was sent.
    """

    def __init__(self, *, port: int, path: str, app_secret: str) -> None:
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        )
        self._secret = app_secret.encode()
        self._customers = 0

    def for_phase(self, name: str) -> RequestFactory:
        return functools.partial(self.request, name)

    def request(self, phase: str, index: int) -> bytes:
        body = self.body(wamid(phase, index), str(FIRST_WA_ID + self._customers))
        self._customers += 1
        signature = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        head = f"X-Hub-Signature-256: sha256={signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        return (self._head + head).encode() + body

    @staticmethod
    def body(message_id: str, wa_id: str) -> bytes:
        """A Cloud API text message notification, shaped as Meta sends it."""
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001234", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": f"Customer {wa_id[-6:]}"}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": message_id,
                    "timestamp": str(int(time.time())),
                    "type": "text",
                    "text": {"body": "Hello! Where is my order? It was due yesterday."},
                }
            ],
        }
        return orjson.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
            }
        )


def wamid(phase: str, index: int) -> str:
    return f"{WAMID_PREFIX}{phase}.{index}"


# --- the bench database ---------------------------------------------------------------------


async def recreate_database(settings: Settings) -> str:
    """Drop and create the bench database; the server's version."""
    admin = await asyncpg.connect(settings.admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {settings.database} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {settings.database}")
        return str(await admin.fetchval("SHOW server_version"))
    finally:
        await admin.close()


class BenchDb:
    """What the bench reads back from wadesk's tables."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def pending(self) -> int:
        sql = "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
        return int(await self._db.fetchval(sql))

    async def unprocessable(self) -> int:
        sql = "SELECT count(*) FROM webhook_deliveries WHERE status = 'unprocessable'"
        return int(await self._db.fetchval(sql))

    async def wait_drained(self, timeout: float) -> float | None:
        """Seconds until no delivery is pending; None if some still are after ``timeout``."""
        start = time.perf_counter()
        while await self.pending():
            if time.perf_counter() - start > timeout:
                return None
            await asyncio.sleep(DRAIN_POLL_S)
        return time.perf_counter() - start

    async def committed(self, phase: str) -> dict[int, float]:
        """Request index -> the message's created_at (Unix seconds), for one phase."""
        rows = await self._db.fetch(
            "SELECT external_id, extract(epoch FROM created_at)::float8 AS at"
            " FROM messages WHERE external_id LIKE $1",
            f"{WAMID_PREFIX}{phase}.%",
        )
        return {int(row["external_id"].rsplit(".", 1)[1]): row["at"] for row in rows}

    async def close(self) -> None:
        await self._db.close()


# --- phases ---------------------------------------------------------------------------------


class Backlog(NamedTuple):
    at_s: float  # since the first request
    queued: int  # requests due but not answered yet: the server is not keeping up
    pending: int  # deliveries stored but not processed yet: the processor is not

    @property
    def total(self) -> int:
        return self.queued + self.pending


@dataclass
class Phase:
    name: str
    load: LoadResult
    offered_rate: float | None = None  # None: closed loop, as fast as answered
    committed: int | None = None  # None: not read back (the ceiling stores nothing)
    processed_per_s: float = math.nan  # committed / (first send -> last commit)
    commit_latencies_ms: list[float] = field(default_factory=list)  # open loop only
    drain_s: float | None = None  # last answer -> nothing pending; None: never drained
    backlog: list[Backlog] = field(default_factory=list)  # sampled once a second
    cpu: CpuTimes = NO_CPU  # used from the first request until drained
    busy_s: float = 0.0  # first request -> drained

    @property
    def missing(self) -> int:
        """Accepted deliveries without a committed message."""
        return 0 if self.committed is None else max(0, self.load.accepted - self.committed)

    def cores(self, cpu_s: float) -> float:
        return cpu_s / self.busy_s if self.busy_s else math.nan

    def cpu_ms_per_message(self, cpu_s: float) -> float:
        """CPU per webhook, everything included (receiving and, for wadesk, processing)."""
        handled = self.committed or self.load.accepted
        return cpu_s * 1000 / handled if handled else math.nan

    def backlog_slope(self) -> float:
        """Least-squares slope of the whole backlog (messages/s) over the second half."""
        if not self.backlog:
            return 0.0
        end = self.backlog[-1].at_s
        half = [(b.at_s, b.total) for b in self.backlog if b.at_s >= end / 2]
        if len(half) < 2:
            return 0.0
        mean_t = sum(t for t, _ in half) / len(half)
        mean_n = sum(n for _, n in half) / len(half)
        spread = sum((t - mean_t) ** 2 for t, _ in half)
        return sum((t - mean_t) * (n - mean_n) for t, n in half) / spread if spread else 0.0

    def backlog_growing(self) -> bool:
        assert self.offered_rate is not None
        return self.backlog_slope() > GROWTH_TOLERANCE * self.offered_rate


class Bench:
    """Load phases against one running server; with ``db``, each phase also waits for the
    backlog to drain and reads back the committed messages."""

    def __init__(
        self, settings: Settings, server: Server, payloads: Payloads, db: BenchDb | None = None
    ) -> None:
        self.settings = settings
        self.server = server
        self.payloads = payloads
        self.db = db

    async def closed(self, name: str, seconds: float) -> Phase:
        cpu = self.server.cpu_times()
        load = await closed_loop(
            HOST,
            self.server.port,
            self.payloads.for_phase(name),
            seconds=seconds,
            concurrency=self.settings.concurrency,
        )
        return await self._settle(Phase(name, load), cpu)

    async def open(self, name: str, rate: float, seconds: float, sample: bool = False) -> Phase:
        cpu = self.server.cpu_times()
        live = LoadResult()
        backlog: list[Backlog] = []
        stop = asyncio.Event()
        sampler = None
        if sample:
            sampler = asyncio.create_task(self._sample_backlog(live, rate, seconds, backlog, stop))
        load = await open_loop(
            HOST,
            self.server.port,
            self.payloads.for_phase(name),
            rate=rate,
            seconds=seconds,
            concurrency=self.settings.concurrency,
            live=live,
        )
        stop.set()
        if sampler:
            await sampler
        return await self._settle(Phase(name, load, offered_rate=rate, backlog=backlog), cpu)

    async def _settle(self, phase: Phase, cpu_before: CpuTimes) -> Phase:
        """Wait for the backlog to drain (the phase's CPU counts until then), then read back
        what was committed."""
        if self.db is not None:
            phase.drain_s = await self.db.wait_drained(self.settings.drain_timeout)
        phase.busy_s = time.time() - phase.load.started_wall
        phase.cpu = self.server.cpu_times() - cpu_before
        if self.db is not None:
            record_commits(phase, await self.db.committed(phase.name))
        return phase

    async def _sample_backlog(
        self,
        live: LoadResult,
        rate: float,
        seconds: float,
        samples: list[Backlog],
        stop: asyncio.Event,
    ) -> None:
        """Once a second while requests are due (or until ``stop``): requests due but not
        answered yet (queued here or in the server's socket), and deliveries stored but not
        processed yet."""
        assert self.db is not None
        while not live.started_wall:
            await asyncio.sleep(0.01)
        while not stop.is_set() and (at_s := time.time() - live.started_wall) <= seconds:
            pending = await self.db.pending()
            samples.append(Backlog(at_s, max(0, round(at_s * rate) - live.answered), pending))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), BACKLOG_SAMPLE_S)


def record_commits(phase: Phase, committed: dict[int, float]) -> None:
    """Processed/s and, for a fixed rate, each message's webhook -> committed latency."""
    phase.committed = len(committed)
    start = phase.load.started_wall
    if committed:
        span = max(committed.values()) - start
        phase.processed_per_s = len(committed) / span if span > 0 else math.nan
    if phase.offered_rate:
        rate = phase.offered_rate
        phase.commit_latencies_ms = [
            (at - (start + index / rate)) * 1000 for index, at in committed.items()
        ]


async def measure_ceiling(settings: Settings, workdir: Path, app_secret: str) -> Phase:
    port = free_port()
    argv = [
        *(sys.executable, "-m", "uvicorn", "ceiling_app:app", "--app-dir", str(BENCH_DIR)),
        *("--host", HOST, "--port", str(port), "--workers", "2"),
        *("--log-level", "warning", "--no-access-log"),
    ]
    env = {**os.environ, "BENCH_APP_SECRET": app_secret}
    payloads = Payloads(port=port, path="/webhooks/whatsapp/ceiling", app_secret=app_secret)
    log = workdir / "ceiling.log"
    # An unsigned GET: the bare app answers 401 as soon as it is up.
    async with serving(argv, port, env=env, cwd=workdir, log=log, probe=("/", 401)) as server:
        bench = Bench(settings, server, payloads)
        await bench.closed("warmup", WARMUP_SECONDS)
        return await bench.closed("ceiling", settings.ceiling_seconds)


def wadesk_env(settings: Settings, workdir: Path, port: int) -> dict[str, str]:
    """The environment of every wadesk command: this machine's WADESK_* do not leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WADESK_")}
    env.update(
        WADESK_DATABASE_URL=settings.sqlalchemy_url,
        WADESK_VAR_DIR=str(workdir / "var"),
        WADESK_SECRET_KEY=secrets.token_urlsafe(48),
        WADESK_SIMULATOR_ENABLED="0",
        WADESK_LOG_LEVEL="WARNING",
        WADESK_BASE_URL=f"http://{HOST}:{port}",
        WADESK_PORT=str(port),
    )
    return env


def add_inbox(env: dict[str, str], workdir: Path, app_secret: str) -> str:
    """Create the WhatsApp inbox; the path of its webhook."""
    output = run_command(
        [
            *(str(WADESK), "inbox", "add-whatsapp", "--name", "bench"),
            *("--phone-number-id", PHONE_NUMBER_ID, "--waba-id", WABA_ID),
            *("--access-token", "bench", "--app-secret", app_secret),
        ],
        env,
        workdir,
    )
    webhook_url = str(json.loads(output.strip().splitlines()[-1])["webhook_url"])
    return urlsplit(webhook_url).path


async def measure_wadesk(
    settings: Settings, workdir: Path, app_secret: str
) -> tuple[list[Phase], int]:
    """The phases, and how many deliveries wadesk marked unprocessable."""
    port = free_port()
    env = wadesk_env(settings, workdir, port)
    run_command([str(WADESK), "db", "upgrade"], env, workdir)
    payloads = Payloads(port=port, path=add_inbox(env, workdir, app_secret), app_secret=app_secret)
    argv = [str(WADESK), "serve", "--workers", "2", "--host", HOST, "--port", str(port)]
    log = workdir / "wadesk.log"
    async with serving(argv, port, env=env, cwd=workdir, log=log, probe=("/readyz", 200)) as server:
        db = BenchDb(await asyncpg.connect(settings.bench_dsn))
        vacuum = await autovacuum_stand_in(settings.bench_dsn)
        try:
            phases = await run_phases(settings, Bench(settings, server, payloads, db))
            return phases, await db.unprocessable()
        finally:
            if vacuum is not None:
                vacuum.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await vacuum
            await db.close()


# The tables a burst of new customers grows, and the queues it churns.
VACUUMED = (
    "contacts",
    "contact_identities",
    "conversations",
    "messages",
    "routing_queue",
    "routing_conversations",
    "webhook_deliveries",
    "events",
    "events_staged",
)


async def autovacuum_stand_in(dsn: str) -> asyncio.Task[None] | None:
    """This machine's shared PostgreSQL runs with ``autovacuum = off`` (it serves test suites).
    A production server has it on; without it the planner keeps the statistics of empty
    tables (sequential scans of 100,000 conversations per batch) and the queue tables keep
    every dead row. When it is off, the bench does autovacuum's job itself: VACUUM (ANALYZE)
    of the busy tables every 10 s, on its own connection, in the measured CPU of PostgreSQL."""
    connection = await asyncpg.connect(dsn)
    if await connection.fetchval("SHOW autovacuum") == "on":
        await connection.close()
        return None
    progress("autovacuum is off on this server: the bench runs VACUUM (ANALYZE) every 10 s")

    async def loop() -> None:
        try:
            while True:
                await asyncio.sleep(10.0)
                for table in VACUUMED:
                    await connection.execute(f"VACUUM (ANALYZE) {table}")
        finally:
            await connection.close()

    return asyncio.create_task(loop())


async def run_phases(settings: Settings, bench: Bench) -> list[Phase]:
    progress(f"warm-up: {WARMUP_SECONDS:.0f} s closed loop")
    await bench.closed("warmup", WARMUP_SECONDS)
    progress(f"max: {settings.max_seconds:.0f} s closed loop, {settings.concurrency} connections")
    maximum = await bench.closed("max", settings.max_seconds)
    progress(f"latency: {settings.latency_rate:.0f}/s for {settings.latency_seconds:.0f} s")
    latency = await bench.open("latency", settings.latency_rate, settings.latency_seconds)
    progress(f"sustained: {settings.sustain_rate:.0f}/s for {settings.sustain_seconds:.0f} s")
    sustained = await bench.open(
        "sustained", settings.sustain_rate, settings.sustain_seconds, sample=True
    )
    return [maximum, latency, sustained]


def progress(message: str) -> None:
    console.log(message)


# --- report ---------------------------------------------------------------------------------


@dataclass
class Report:
    ceiling: Phase
    maximum: Phase
    latency: Phase
    sustained: Phase
    unprocessable: int
    machine: dict[str, Any]
    revision: str
    settings: Settings

    def phases(self) -> tuple[Phase, ...]:
        return (self.ceiling, self.maximum, self.latency, self.sustained)

    def error_detail(self) -> Counter[str]:
        detail: Counter[str] = Counter()
        for phase in self.phases():
            for kind, count in phase.load.failures.items():
                detail[f"{phase.name}: {kind}"] += count
            if phase.missing:
                detail[f"{phase.name}: accepted but no message committed"] += phase.missing
            if phase.committed is not None and phase.drain_s is None:
                detail[f"{phase.name}: backlog not drained in time"] += 1
        if self.unprocessable:
            detail["deliveries marked unprocessable"] += self.unprocessable
        return detail

    def ceiling_ratio(self) -> float:
        ceiling = self.ceiling.load.accepted_per_s
        return self.maximum.load.accepted_per_s / ceiling if ceiling else math.nan

    def sustained_ok(self) -> bool:
        phase = self.sustained
        assert phase.offered_rate is not None
        return (
            not phase.backlog_growing()
            and phase.load.errors == 0
            and phase.load.unanswered == 0
            and phase.missing == 0
            and phase.load.accepted_per_s >= ACCEPTED_RATE_TOLERANCE * phase.offered_rate
        )

    def targets(self) -> dict[str, bool]:
        return {
            "processed_per_s": self.maximum.processed_per_s >= TARGET_PROCESSED_PER_S,
            "ceiling_ratio": self.ceiling_ratio() >= TARGET_CEILING_RATIO,
            "webhook_p99_ms": self.latency.load.percentile_ms(0.99) < TARGET_WEBHOOK_P99_MS
            and self.latency.load.unanswered == 0,
            "sustained": self.sustained_ok(),
        }

    def to_json(self) -> dict[str, Any]:
        sustained = self.sustained
        figures = {
            "accepted_per_s": self.maximum.load.accepted_per_s,
            "processed_per_s": self.maximum.processed_per_s,
            "ceiling_per_s": self.ceiling.load.accepted_per_s,
            "ceiling_ratio": self.ceiling_ratio(),
            "webhook_p50_ms": self.latency.load.percentile_ms(0.50),
            "webhook_p99_ms": self.latency.load.percentile_ms(0.99),
            "commit_p50_ms": percentile(self.latency.commit_latencies_ms, 0.50),
            "commit_p99_ms": percentile(self.latency.commit_latencies_ms, 0.99),
            "latency_rate_per_s": self.latency.offered_rate,
            "sustained_rate_per_s": sustained.offered_rate,
            "sustained_seconds": self.settings.sustain_seconds,
            "sustained_accepted_per_s": sustained.load.accepted_per_s,
            "sustained_processed_per_s": sustained.processed_per_s,
            "sustained_webhook_p99_ms": sustained.load.percentile_ms(0.99),
            "sustained_backlog_max": max((b.total for b in sustained.backlog), default=0),
            "sustained_queued_max": max((b.queued for b in sustained.backlog), default=0),
            "sustained_pending_max": max((b.pending for b in sustained.backlog), default=0),
            "sustained_backlog_slope_per_s": sustained.backlog_slope(),
            "sustained_backlog_growing": sustained.backlog_growing(),
            "latency_unanswered": self.latency.load.unanswered,
            "sustained_unanswered": sustained.load.unanswered,
        }
        detail = self.error_detail()
        return {
            **{k: _json_number(v) for k, v in figures.items()},
            "errors": sum(detail.values()),
            "error_detail": dict(detail),
            "targets_met": self.targets(),
            "phases": {
                phase.name: {k: _json_number(v) for k, v in phase_figures(phase).items()}
                for phase in self.phases()
            },
            "machine": self.machine,
            "revision": self.revision,
            "concurrency": self.settings.concurrency,
        }


def phase_figures(phase: Phase) -> dict[str, Any]:
    """The figures of one phase, as in the JSON output (NaN where there is none)."""
    load, cpu = phase.load, phase.cpu
    return {
        "offered_per_s": phase.offered_rate,
        "accepted_per_s": load.accepted_per_s,
        "webhook_p50_ms": load.percentile_ms(0.50),
        "webhook_p99_ms": load.percentile_ms(0.99),
        "processed_per_s": phase.processed_per_s,
        "commit_p99_ms": percentile(phase.commit_latencies_ms, 0.99),
        "drain_s": math.nan if phase.committed is None else phase.drain_s,
        "unanswered": load.unanswered,
        "server_cores": phase.cores(cpu.server_s),
        "server_cpu_ms_per_message": phase.cpu_ms_per_message(cpu.server_s),
        "postgres_cores": phase.cores(cpu.postgres_s),
        "postgres_cpu_ms_per_message": phase.cpu_ms_per_message(cpu.postgres_s),
        "loadgen_cores": phase.cores(cpu.bench_s),
        "other_cores": phase.cores(cpu.machine_s - cpu.server_s - cpu.postgres_s - cpu.bench_s),
        "machine_busy": phase.cores(cpu.machine_s) / CORES,
        "errors": load.errors + phase.missing,
    }


def _json_number(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    return value


PHASE_COLUMNS = (
    ("load", "offered_per_s", lambda v: "max" if v is None else f"{v:,.0f}/s"),
    ("accepted/s", "accepted_per_s", "{:,.0f}".format),
    ("webhook p50", "webhook_p50_ms", "{:.1f} ms".format),
    ("webhook p99", "webhook_p99_ms", "{:.1f} ms".format),
    ("processed/s", "processed_per_s", "{:,.0f}".format),
    ("commit p99", "commit_p99_ms", "{:.1f} ms".format),
    ("drain", "drain_s", lambda v: "never" if v is None else f"{v:.1f} s"),
    ("unanswered", "unanswered", "{:,}".format),
    ("server cores", "server_cores", "{:.2f}".format),
    ("server CPU/msg", "server_cpu_ms_per_message", "{:.2f} ms".format),
    ("PG cores", "postgres_cores", "{:.2f}".format),
    ("PG CPU/msg", "postgres_cpu_ms_per_message", "{:.2f} ms".format),
    ("loadgen cores", "loadgen_cores", "{:.2f}".format),
    ("other cores", "other_cores", "{:.2f}".format),
    ("machine busy", "machine_busy", "{:.0%}".format),
    ("errors", "errors", str),
)

Rows = tuple[list[str], list[list[str]]]  # (headers, rows)


def phase_rows(report: Report) -> Rows:
    headers = ["phase", *(title for title, _, _ in PHASE_COLUMNS)]
    rows = []
    for phase in report.phases():
        figures = phase_figures(phase)
        rows.append([phase.name, *(_cell(figures[k], render) for _, k, render in PHASE_COLUMNS)])
    return headers, rows


def _cell(value: Any, render: Callable[[Any], str]) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "—"
    return render(value)


def target_rows(report: Report) -> Rows:
    data = report.to_json()
    met = report.targets()
    at = f"at {report.latency.offered_rate:,.0f}/s"
    sustained = report.sustained
    rows = [
        ("accepted deliveries/s (max load)", "", f"{data['accepted_per_s']:,.0f}", None),
        ("ceiling: bare ASGI app, signature only", "", f"{data['ceiling_per_s']:,.0f}", None),
        (
            "accepted/s vs ceiling",
            f"≥ {TARGET_CEILING_RATIO:.0%}",
            f"{report.ceiling_ratio():.0%}",
            met["ceiling_ratio"],
        ),
        (
            "fully processed messages/s (max load)",
            f"≥ {TARGET_PROCESSED_PER_S:,.0f}",
            f"{report.maximum.processed_per_s:,.0f}",
            met["processed_per_s"],
        ),
        (f"webhook p50 {at}", "", _ms(data["webhook_p50_ms"]), None),
        (
            f"webhook p99 {at}",
            f"< {TARGET_WEBHOOK_P99_MS:.0f} ms",
            _ms(data["webhook_p99_ms"]) + _unanswered(report.latency),
            met["webhook_p99_ms"],
        ),
        (f"webhook → message committed p99 {at}", "", _ms(data["commit_p99_ms"]), None),
        (
            f"sustained {sustained.offered_rate:,.0f}/s"
            f" for {report.settings.sustain_seconds:.0f} s",
            "backlog not growing",
            f"accepted {sustained.load.accepted_per_s:,.0f}/s{_unanswered(sustained)}; backlog"
            f" max {data['sustained_queued_max']:,} queued +"
            f" {data['sustained_pending_max']:,} pending, slope {sustained.backlog_slope():+.1f}/s",
            met["sustained"],
        ),
        ("errors", "0", str(data["errors"]), data["errors"] == 0),
    ]
    verdict = {None: "", True: "pass", False: "FAIL"}
    return (
        ["figure", "target", "measured", "result"],
        [[figure, target, measured, verdict[ok]] for figure, target, measured, ok in rows],
    )


def _unanswered(phase: Phase) -> str:
    count = phase.load.unanswered
    return f" ({count:,} unanswered)" if count else ""


def _ms(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.1f} ms"


def rich_table(title: str, rows: Rows) -> Table:
    headers, body = rows
    table = Table(title=title)
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index == 0 else "right")
    colour = {"pass": "[green]pass[/green]", "FAIL": "[red]FAIL[/red]"}
    for row in body:
        table.add_row(*(colour.get(cell, cell) for cell in row))
    return table


def markdown_table(rows: Rows) -> str:
    headers, body = rows
    lines = [headers, ["---"] * len(headers), *body]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


# --- machine --------------------------------------------------------------------------------


async def background_busy() -> float:
    """How busy the machine is before the bench starts (0..1 of all cores): other work on it
    takes CPU from the servers, and the figures with it."""
    before = cpu_times()
    await asyncio.sleep(BACKGROUND_SAMPLE_S)
    return (cpu_times() - before).machine_s / BACKGROUND_SAMPLE_S / CORES


def revision() -> str:
    """The commit of the code measured; "+modified" when src/ differs from it."""
    try:
        head = run_command(["git", "rev-parse", "--short", "HEAD"], os.environ, BENCH_DIR)
        changes = run_command(["git", "status", "--porcelain", "src"], os.environ, BENCH_DIR)
    except (OSError, ServerError):
        return "unknown"
    return head.strip() + ("+modified" if changes.strip() else "")


def machine_info(postgresql_version: str, background: float) -> dict[str, Any]:
    cpu_model = "unknown"
    with suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu_model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
            cpu_model,
        )
    ram_gib = math.nan
    with suppress(OSError), open("/proc/meminfo") as meminfo:
        kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
        ram_gib = round(kib / 2**20, 1)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "ram_gib": ram_gib,
        "postgresql": postgresql_version,
        "python": platform.python_version(),
        "busy_before_run": round(background, 3),
    }


# --- main -----------------------------------------------------------------------------------


async def run(settings: Settings) -> Report:
    code = revision()
    background = await background_busy()
    if background > BACKGROUND_WARNING:
        console.print(
            f"[yellow]warning:[/yellow] the machine is {background:.0%} busy before the bench"
            " starts: the figures will be lower than on an idle machine"
        )
    app_secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="wadesk-bench-") as tmp:
        workdir = Path(tmp)
        progress(f"ceiling: {settings.ceiling_seconds:.0f} s closed loop on the bare ASGI app")
        ceiling = await measure_ceiling(settings, workdir, app_secret)
        progress(f"wadesk: fresh database {settings.database}, migrations, inbox, 2 workers")
        version = await recreate_database(settings)
        (maximum, latency, sustained), unprocessable = await measure_wadesk(
            settings, workdir, app_secret
        )
    machine = machine_info(version, background)
    return Report(ceiling, maximum, latency, sustained, unprocessable, machine, code, settings)


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    try:
        report = uvloop.run(run(settings))
    except ServerError as exc:
        console.print(f"[red]bench failed:[/red] {exc}")
        return 2
    phases, targets = phase_rows(report), target_rows(report)
    if settings.markdown:
        print(f"{markdown_table(targets)}\n\n{markdown_table(phases)}")
    else:
        out = Console(width=None if sys.stdout.isatty() else WIDE_OUTPUT)
        out.print(rich_table("Phases", phases))
        out.print(rich_table("Targets", targets))
    data = report.to_json()
    if settings.json:
        print(json.dumps(data))
    return 0 if all(data["targets_met"].values()) and data["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
