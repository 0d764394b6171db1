"""Short-link benchmark: `GET /c/<slug>` redirects per second, with click recording, on
PostgreSQL, and whether any click is lost.

Sets everything up itself: a fresh PostgreSQL database, migrations, one link (`wadesk links
create`), and `wadesk serve --workers 2` on a free port; and, in the same run, a baseline: a
bare ASGI app under the same uvicorn that answers every request with the same 302 and does
nothing else (no lookup, no counting). Phases, each a closed loop of keep-alive connections:

1. baseline: the bare redirect app;
2. wadesk: warm-up, then the measured run (1,000 distinct visitors); then a graceful stop
   (SIGTERM), after which the clicks in the database must equal the 302s the server sent.

Run `.venv/bin/python bench/links.py [--quick] [--json]`. Exit status 0 when the targets are
met (>= 3,000 redirects/s, no click lost).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:  # run as a script or imported by uvicorn as "links"
    sys.path.insert(0, str(BENCH_DIR))

WADESK = Path(sys.executable).with_name("wadesk")
SLUG = "promo-natal"
TARGET = "https://wa.me/5511987654321?text=Ol%C3%A1%21%20Quero%20a%20promo%C3%A7%C3%A3o"
VISITORS = 1000
TARGET_REDIRECTS_PER_S = 3000.0
WARMUP_S = 2.0

# --- the baseline: a bare ASGI redirect ---------------------------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
BASELINE_HEADERS = [
    (b"location", TARGET.encode()),
    (b"cache-control", b"no-store"),
    (b"content-length", b"0"),
]


async def baseline_app(scope: Scope, receive: Receive, send: Send) -> None:
    """What no redirect can skip: answer 302 with the Location. Nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 302, "headers": BASELINE_HEADERS})
    await send({"type": "http.response.body", "body": b""})


# --- load ----------------------------------------------------------------------------------


@dataclass
class Load:
    statuses: Counter[int | str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def redirects(self) -> int:
        return self.statuses[302]

    @property
    def per_s(self) -> float:
        return self.redirects / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, int(q * len(ordered)) - 1)] if ordered else float("nan")


def request_bytes(port: int, index: int) -> bytes:
    visitor = index % VISITORS
    return (
        f"GET /c/{SLUG} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"User-Agent: Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36 bench/{visitor}\r\n"
        "\r\n"
    ).encode()


async def closed_loop(port: int, seconds: float, concurrency: int) -> Load:
    """``concurrency`` keep-alive connections, each sending its next request when answered."""
    from loadgen import HttpConnection, ResponseError

    load = Load()
    indexes = itertools.count()
    connections = [await HttpConnection.open("127.0.0.1", port) for _ in range(concurrency)]
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(connection: HttpConnection) -> None:
        while time.perf_counter() < deadline:
            raw = request_bytes(port, next(indexes))
            sent = time.perf_counter()
            try:
                status: int | str = await connection.request(raw)
            except (OSError, ResponseError) as exc:
                load.statuses[type(exc).__name__] += 1
                connection.close()
                connection = await HttpConnection.open("127.0.0.1", port)
                continue
            load.statuses[status] += 1
            load.latencies_ms.append((time.perf_counter() - sent) * 1000)

    await asyncio.gather(*(worker(c) for c in connections))
    load.elapsed_s = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return load


# --- servers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    pg_url: str
    database: str
    seconds: float
    concurrency: int
    json: bool

    @property
    def bench_dsn(self) -> str:
        return f"{self.pg_url}/{self.database}"


def wadesk_env(options: Options, workdir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WADESK_")}
    env.update(
        WADESK_DATABASE_URL=options.bench_dsn.replace("postgresql://", "postgresql+asyncpg://"),
        WADESK_VAR_DIR=str(workdir / "var"),
        WADESK_SECRET_KEY=secrets.token_urlsafe(48),
        WADESK_SIMULATOR_ENABLED="0",
        WADESK_LOG_LEVEL="WARNING",
        WADESK_BASE_URL=f"http://127.0.0.1:{port}",
        WADESK_PORT=str(port),
    )
    return env


async def recreate_database(options: Options) -> str:
    import asyncpg

    admin = await asyncpg.connect(f"{options.pg_url}/postgres")
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {options.database} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {options.database}")
        return str(await admin.fetchval("SHOW server_version"))
    finally:
        await admin.close()


async def clicks_in_database(options: Options, link_id: int) -> tuple[int, int, int]:
    import asyncpg

    connection = await asyncpg.connect(options.bench_dsn)
    try:
        row = await connection.fetchrow(
            "SELECT coalesce(sum(clicks), 0) AS people, coalesce(sum(bot_clicks), 0) AS bots,"
            " coalesce(sum(uniques), 0) AS uniques FROM link_click_days WHERE link_id = $1",
            link_id,
        )
        assert row is not None
        return int(row["people"]), int(row["bots"]), int(row["uniques"])
    finally:
        await connection.close()


async def measure_baseline(options: Options, workdir: Path) -> Load:
    from servers import free_port, serving

    port = free_port()
    argv = [
        *(sys.executable, "-m", "uvicorn", "links:baseline_app", "--app-dir", str(BENCH_DIR)),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "2"),
        *("--log-level", "warning", "--no-access-log"),
    ]
    log = workdir / "baseline.log"
    async with serving(argv, port, env=dict(os.environ), cwd=workdir, log=log, probe=("/", 302)):
        await closed_loop(port, WARMUP_S, options.concurrency)
        return await closed_loop(port, options.seconds, options.concurrency)


@dataclass
class WadeskRun:
    warmup: Load
    measured: Load
    redirects_sent: int
    clicks_written: int
    uniques: int
    link_id: int


async def measure_wadesk(options: Options, workdir: Path) -> WadeskRun:
    from servers import free_port, run_command, serving

    port = free_port()
    env = wadesk_env(options, workdir, port)
    run_command([str(WADESK), "db", "upgrade"], env, workdir)
    created = run_command(
        [
            *(str(WADESK), "links", "create", "--phone", "+55 11 98765-4321"),
            *("--message", "Olá! Quero a promoção", "--slug", SLUG, "--campaign", "bench"),
        ],
        env,
        workdir,
    )
    link_id = int(json.loads(created)["id"])
    argv = [str(WADESK), "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    log = workdir / "wadesk.log"
    async with serving(argv, port, env=env, cwd=workdir, log=log, probe=("/readyz", 200)):
        warmup = await closed_loop(port, WARMUP_S, options.concurrency)
        measured = await closed_loop(port, options.seconds, options.concurrency)
    # Leaving the block stopped the server with SIGTERM: a graceful stop writes every click.
    people, bots, uniques = await clicks_in_database(options, link_id)
    return WadeskRun(
        warmup=warmup,
        measured=measured,
        redirects_sent=warmup.redirects + measured.redirects,
        clicks_written=people + bots,
        uniques=uniques,
        link_id=link_id,
    )


# --- report ---------------------------------------------------------------------------------


def report(options: Options, baseline: Load, run: WadeskRun, postgresql: str) -> dict[str, Any]:
    measured = run.measured
    errors = sum(n for status, n in measured.statuses.items() if status != 302) + sum(
        n for status, n in run.warmup.statuses.items() if status != 302
    )
    lost = run.redirects_sent - run.clicks_written
    return {
        "redirects_per_s": round(measured.per_s, 1),
        "clicks_lost": lost,
        "baseline_redirects_per_s": round(baseline.per_s, 1),
        "ratio_to_baseline": round(measured.per_s / baseline.per_s, 3) if baseline.per_s else None,
        "p50_ms": round(measured.percentile(0.50), 2),
        "p99_ms": round(measured.percentile(0.99), 2),
        "redirects_sent": run.redirects_sent,
        "clicks_written": run.clicks_written,
        "uniques_written": run.uniques,
        "errors": errors,
        "seconds": options.seconds,
        "concurrency": options.concurrency,
        "targets_met": {
            "redirects_per_s": measured.per_s >= TARGET_REDIRECTS_PER_S,
            "no_click_lost": lost == 0 and errors == 0,
        },
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "postgresql": postgresql,
        },
    }


def print_table(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Short links: GET /c/<slug> → 302 wa.me (2 server processes)")
    for column in ("figure", "target", "measured", "result"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    met = data["targets_met"]
    verdict = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: ""}
    rows = [
        ("baseline: bare ASGI 302", "", f"{data['baseline_redirects_per_s']:,.0f}/s", None),
        (
            "wadesk redirects with click recording",
            f"≥ {TARGET_REDIRECTS_PER_S:,.0f}/s",
            f"{data['redirects_per_s']:,.0f}/s",
            met["redirects_per_s"],
        ),
        ("ratio to the baseline", "", f"{data['ratio_to_baseline']:.0%}", None),
        ("latency p50 / p99", "", f"{data['p50_ms']:.1f} / {data['p99_ms']:.1f} ms", None),
        (
            "clicks lost (302s sent minus clicks written, after SIGTERM)",
            "0",
            f"{data['clicks_lost']:,} ({data['redirects_sent']:,} sent,"
            f" {data['clicks_written']:,} written)",
            met["no_click_lost"],
        ),
        ("unique visitors written", f"{VISITORS:,}", f"{data['uniques_written']:,}", None),
        ("errors", "0", str(data["errors"]), data["errors"] == 0),
    ]
    for figure, target, measured, ok in rows:
        table.add_row(figure, target, measured, verdict[ok])
    Console(stderr=True).print(table)


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s phases")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--seconds", type=float, help="measured seconds per phase (default 15)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="wadesk_bench_links", help="dropped and re-created")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.database):
        parser.error("--database: lower-case letters, digits and underscores only")
    seconds = args.seconds or (5.0 if args.quick else 15.0)
    return Options(args.pg_url.rstrip("/"), args.database, seconds, args.concurrency, args.json)


async def run(options: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wadesk-bench-links-") as tmp:
        workdir = Path(tmp)
        baseline = await measure_baseline(options, workdir)
        postgresql = await recreate_database(options)
        measured = await measure_wadesk(options, workdir)
    return report(options, baseline, measured, postgresql)


def main(argv: list[str] | None = None) -> int:
    import uvloop

    options = parse_args(argv)
    data = uvloop.run(run(options))
    print_table(data)
    if options.json:
        print(json.dumps(data))
    return 0 if all(data["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
