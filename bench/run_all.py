"""`make bench`: the benchmarks and fault scenarios that fit in about 10 minutes, one table.

Runs, one after another (never in parallel: they measure the machine), each with `--json`
(and `--quick` unless `--full`): bench/ingest.py, then bench/faults/kill_server.py,
kill_worker.py, db_outage.py, redis_outage.py, graph_failures.py and festival.py. Each prints
one JSON object last; this collects their targets into one table: figure, target, measured,
pass/fail. Exit status 0 when every figure with a target passed.

`.venv/bin/python bench/run_all.py [--full] [--only NAME ...] [--markdown] [--json]`
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SCENARIOS = (
    ("ingest", BENCH_DIR / "ingest.py", 420),
    ("kill_server", BENCH_DIR / "faults" / "kill_server.py", 420),
    ("kill_worker", BENCH_DIR / "faults" / "kill_worker.py", 420),
    ("db_outage", BENCH_DIR / "faults" / "db_outage.py", 300),
    ("redis_outage", BENCH_DIR / "faults" / "redis_outage.py", 300),
    ("graph_failures", BENCH_DIR / "faults" / "graph_failures.py", 420),
    ("festival", BENCH_DIR / "faults" / "festival.py", 420),
)

Row = tuple[str, str, str, bool | None]  # figure, target, measured, passed (None: no target)


def ingest_rows(data: dict[str, Any]) -> list[Row]:
    met = data.get("targets_met", {})

    def num(key: str, fmt: str) -> str:
        value = data.get(key)
        return (
            "—"
            if value is None or (isinstance(value, float) and math.isnan(value))
            else (fmt.format(value))
        )

    return [
        (
            "ingest: fully processed messages/s",
            "≥ 1,000",
            num("processed_per_s", "{:,.0f}"),
            met.get("processed_per_s"),
        ),
        (
            "ingest: accepted/s vs bare ASGI ceiling",
            "≥ 40%",
            num("ceiling_ratio", "{:.0%}"),
            met.get("ceiling_ratio"),
        ),
        (
            f"ingest: webhook p99 at {num('latency_rate_per_s', '{:,.0f}')}/s",
            "< 50 ms",
            num("webhook_p99_ms", "{:.1f} ms"),
            met.get("webhook_p99_ms"),
        ),
        (
            f"ingest: sustained {num('sustained_rate_per_s', '{:,.0f}')}/s",
            "backlog not growing",
            f"{num('sustained_accepted_per_s', '{:,.0f}')}/s accepted, slope "
            f"{num('sustained_backlog_slope_per_s', '{:+.1f}')}/s",
            met.get("sustained"),
        ),
        ("ingest: errors", "0", str(data.get("errors", "—")), data.get("errors") == 0),
    ]


def scenario_rows(name: str, data: dict[str, Any]) -> list[Row]:
    return [
        (f"{name}: {c['figure']}", c["target"], c["measured"], c["ok"])
        for c in data.get("checks", [])
    ]


def run_one(name: str, script: Path, timeout: int, quick: bool) -> tuple[list[Row], float]:
    argv = [sys.executable, str(script), "--json", *(["--quick"] if quick else [])]
    started = time.monotonic()
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=BENCH_DIR
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the scenario then stops the wadesk processes it started.
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.communicate(timeout=30)
        process.kill()
        process.communicate()
        return [(f"{name}: ran", f"within {timeout} s", "timed out", False)], timeout
    done = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
    elapsed = time.monotonic() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    try:
        data = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        return [(f"{name}: ran", "completes", f"exit {done.returncode}: {tail[:300]}", False)], (
            elapsed
        )
    rows = ingest_rows(data) if name == "ingest" else scenario_rows(name, data)
    return rows, elapsed


def render(rows: list[Row], markdown: bool) -> str:
    verdict = {True: "pass", False: "FAIL", None: ""}
    table = [["figure", "target", "measured", "result"]]
    table += [[f, t, m, verdict[ok]] for f, t, m, ok in rows]
    if markdown:
        lines = [table[0], ["---"] * 4, *table[1:]]
        return "\n".join(
            "| " + " | ".join(cell.replace("|", "/") for cell in r) + " |" for r in lines
        )
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    out = []
    for index, r in enumerate(table):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full-length runs (~30 min)")
    parser.add_argument("--only", nargs="*", choices=[n for n, _, _ in SCENARIOS])
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    timings: dict[str, float] = {}
    for name, script, timeout in SCENARIOS:
        if args.only and name not in args.only:
            continue
        found, elapsed = run_one(name, script, timeout * (3 if args.full else 1), not args.full)
        rows += found
        timings[name] = round(elapsed, 1)
    print(render(rows, args.markdown))
    failed = [r for r in rows if r[3] is False]
    print(
        f"\n{len(rows) - len(failed)} of {len(rows)} figures pass; run times (s): {timings}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps({"rows": rows, "timings_s": timings, "passed": not failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
