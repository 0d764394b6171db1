"""What the fault scenarios share: processes, the simulator, Meta-like load, SSE clients, the DB.

Every scenario sets up its own world on 127.0.0.1: a fresh PostgreSQL database (or its own
throwaway cluster), migrations, a WhatsApp inbox whose Graph API is a simulator run inside the
scenario's process (so it can count what it received), and real ``wadesk serve`` /
``wadesk worker`` processes, each in its own session so that ``kill -9`` reaches all of it.

The load behaves like Meta: a delivery that is not answered 200 (error, 503, connection refused,
connection lost) is sent again, to the next server in turn, until it is, or until a give-up time
far beyond the scenario's faults. Each scenario prints one line per check (``PASS``/``FAIL``,
the figure, its target and what was measured) and, with ``--json``, one JSON object last.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parents[1]
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402
import uvicorn  # noqa: E402

from loadgen import HEADER_END, HttpConnection, ResponseError, percentile  # noqa: E402
from servers import HOST, free_port  # noqa: E402
from wadesk.channels.simulator.app import (  # noqa: E402
    BusinessNumber,
    Simulator,
    create_simulator_app,
)

WADESK = Path(sys.executable).with_name("wadesk")
PHONE_NUMBER_ID = "109000000001"
WABA_ID = "209000000001"
ACCESS_TOKEN = "EAAG-faults-token"
DISPLAY_NUMBER = "15550009999"
FIRST_WA_ID = 447800000000
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
ATTEMPT_TIMEOUT_S = 10.0
RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0)  # then 2 s between attempts, like Meta's backoff
TAIL_LINES = 30
DEBUG = bool(os.environ.get("FAULTS_DEBUG"))
DEAD_URL = "http://127.0.0.1:9/nowhere"  # the discard port: nothing listens there


class Connection(HttpConnection):
    """bench/loadgen's keep-alive connection, which also reads chunked answers (the webhook
    path answers without a Content-Length)."""

    def _complete(self) -> None:
        end = self._buffer.find(HEADER_END)
        if end < 0 or self._waiter is None:
            return
        head = bytes(self._buffer[:end]).lower()
        if b"\r\ntransfer-encoding: chunked" not in head:
            super()._complete()
            return
        last = self._buffer.find(b"\r\n0\r\n\r\n", end)
        if last < 0:
            last = self._buffer.find(b"0\r\n\r\n", end + len(HEADER_END))
            if last != end + len(HEADER_END):
                return
            total = last + 5
        else:
            total = last + 7
        try:
            status = int(head[9:12])
        except ValueError as exc:
            raise ResponseError(f"unreadable response head: {head[:200]!r}") from exc
        del self._buffer[:total]
        if not self._waiter.done():
            self._waiter.set_result(status)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- options and results ----------------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a shorter run (make bench)")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    return p


@dataclass
class Check:
    figure: str
    target: str
    measured: str
    ok: bool | None  # None: a figure without a target


@dataclass
class Outcome:
    scenario: str
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def check(self, figure: str, target: str, measured: str, ok: bool | None) -> None:
        self.checks.append(Check(figure, target, measured, ok))

    @property
    def passed(self) -> bool:
        return all(c.ok is not False for c in self.checks) and bool(self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "checks": [c.__dict__ for c in self.checks],
            "figures": self.figures,
            "notes": self.notes,
        }

    def emit(self, as_json: bool) -> int:
        width = max((len(c.figure) for c in self.checks), default=10)
        for c in self.checks:
            verdict = {True: "PASS", False: "FAIL", None: "    "}[c.ok]
            target = f" (target {c.target})" if c.target else ""
            print(f"{verdict} {self.scenario}: {c.figure:<{width}} {c.measured}{target}")
        for note in self.notes:
            print(f"note {self.scenario}: {note}")
        print(f"{'PASS' if self.passed else 'FAIL'} {self.scenario}")
        if as_json:
            print(json.dumps(self.to_json()))
        return 0 if self.passed else 1


def run_scenario(main: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    import uvloop

    try:
        outcome: Outcome = uvloop.run(main(args))
    except ScenarioError as exc:
        outcome = Outcome(Path(sys.argv[0]).stem)
        log(f"scenario failed: {exc}")
        last = (str(exc).strip().splitlines() or [""])[-1]
        outcome.check("scenario ran", "completes", f"error: {last[:300]}", False)
    return outcome.emit(args.json)


class ScenarioError(RuntimeError):
    pass


# --- processes --------------------------------------------------------------------------------


def run_command(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(f"{done.stdout}\n{done.stderr}".splitlines()[-TAIL_LINES:])
        raise ScenarioError(f"{' '.join(argv[:3])} failed:\n{tail}")
    return done.stdout


_STARTED: list[Proc] = []


def _kill_started() -> None:
    """At exit (or SIGTERM from a runner's timeout): no wadesk process of ours outlives us."""
    for proc in _STARTED:
        if proc.alive():
            proc.kill9()


atexit.register(_kill_started)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class Proc:
    """A wadesk process in its own session (so kill -9 reaches its children too)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.log = cwd / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _STARTED.append(self)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    async def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait; the exit status (None: it had to be killed)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        code = self.process.poll()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return code

    def rss_kib(self) -> int:
        """Resident memory of every process of the session."""
        if not self.alive():
            return 0
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(") ")[2].split()
                if int(fields[3]) != self.pid:
                    continue
                status = (stat.parent / "status").read_text()
            except (OSError, ValueError, IndexError):
                continue
            match = re.search(r"VmRSS:\s+(\d+)", status)
            total += int(match.group(1)) if match else 0
        return total

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-TAIL_LINES:])
        return ""


async def http_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    raw = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    try:
        async with asyncio.timeout(timeout):
            connection = await Connection.open(HOST, port)
            try:
                return await connection.request(raw)
            finally:
                connection.close()
    except (OSError, ResponseError, TimeoutError):
        return None


async def wait_ready(proc: Proc, timeout: float = START_TIMEOUT_S) -> None:
    assert proc.port is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise ScenarioError(f"{proc.name} exited:\n{proc.tail()}")
        if await http_status(proc.port, "/readyz") == 200:
            return
        await asyncio.sleep(0.2)
    raise ScenarioError(f"{proc.name} not ready within {timeout:.0f} s:\n{proc.tail()}")


# --- the simulator, in this process -----------------------------------------------------------


class SimulatorServer:
    """The Graph API simulator on its own port; ``send_times`` are the wall-clock times of
    every send it received (accepted or not), for pacing."""

    def __init__(self, **options: Any) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.sim = Simulator(public_url=self.url, **options)
        self.send_times: list[float] = []
        original = self.sim.handle_send

        async def handle_send(number: BusinessNumber, body: Any) -> dict[str, Any]:
            if not (isinstance(body, dict) and "status" in body):
                self.send_times.append(time.time())
            return await original(number, body)

        self.sim.handle_send = handle_send  # type: ignore[method-assign]
        config = uvicorn.Config(
            create_simulator_app(self.sim),
            host=HOST,
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)
        await self.sim.aclose()

    def register(self, app_secret: str, webhook_url: str) -> None:
        self.sim.register_number(
            BusinessNumber(
                phone_number_id=PHONE_NUMBER_ID,
                display_phone_number=DISPLAY_NUMBER,
                waba_id=WABA_ID,
                access_token=ACCESS_TOKEN,
                app_secret=app_secret,
                webhook_url=webhook_url,
            )
        )

    def copies(self) -> Counter[str]:
        """Accepted sends per message text (each scenario message has a unique text)."""
        counts: Counter[str] = Counter()
        for message in self.sim.messages.values():
            if message.sender != "business":
                continue
            text = message.payload.get("text", {})
            if isinstance(text, dict) and "body" in text:
                counts[str(text["body"])] += 1
        return counts


# --- the deployment ---------------------------------------------------------------------------


@dataclass
class Deployment:
    """A fresh database, migrations, an inbox on the simulator, and wadesk processes."""

    workdir: Path
    db_url: str  # postgresql://... of the scenario's database
    app_secret: str
    env: dict[str, str]
    webhook_path: str = ""
    procs: list[Proc] = field(default_factory=list)
    token: str = ""

    @property
    def dsn(self) -> str:
        return self.db_url

    def proc(self, name: str, argv: list[str], port: int | None = None) -> Proc:
        env = dict(self.env)
        if port is not None:
            env["WADESK_PORT"] = str(port)
            env["WADESK_BASE_URL"] = f"http://{HOST}:{port}"
        p = Proc(name, argv, env, self.workdir)
        p.port = port
        self.procs.append(p)
        return p

    async def serve(self, name: str, port: int | None = None) -> Proc:
        port = port or free_port()
        argv = [str(WADESK), "serve", "--host", HOST, "--port", str(port)]
        p = self.proc(name, argv, port)
        p.start()
        await wait_ready(p)
        return p

    async def restart(self, p: Proc) -> None:
        p.start()
        if p.port is not None:
            await wait_ready(p)

    def worker(self, name: str) -> Proc:
        p = self.proc(name, [str(WADESK), "worker"])
        p.start()
        return p

    async def stop_all(self) -> None:
        await asyncio.gather(*(p.terminate(10) for p in self.procs if p.alive()))

    def admin_token(self) -> str:
        """An admin and an API token for the API and the SSE stream."""
        run_command(
            [
                *(str(WADESK), "user", "create", "--email", "ops@example.com"),
                *("--name", "Ops", "--role", "admin", "--password", secrets.token_urlsafe(16)),
            ],
            self.env,
            self.workdir,
        )
        out = run_command(
            [str(WADESK), "token", "create", "--email", "ops@example.com", "--name", "faults"],
            self.env,
            self.workdir,
        )
        self.token = out.strip().splitlines()[-1].strip()
        return self.token


async def recreate_database(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def deployment(
    pg_url: str,
    database: str,
    sim: SimulatorServer,
    *,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Deployment]:
    """Database, migrations and inbox; every process started through it is stopped after."""
    pg_url = pg_url.rstrip("/")
    await recreate_database(f"{pg_url}/postgres", database)
    with tempfile.TemporaryDirectory(prefix=f"wadesk-{database}-") as tmp:
        workdir = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WADESK_")}
        env.update(
            WADESK_DATABASE_URL=f"{pg_url}/{database}".replace(
                "postgresql://", "postgresql+asyncpg://", 1
            ),
            WADESK_VAR_DIR=str(workdir / "var"),
            WADESK_SECRET_KEY=os.environ.get("FAULTS_SECRET_KEY") or secrets.token_urlsafe(48),
            WADESK_SIMULATOR_ENABLED="0",
            WADESK_LOG_LEVEL="WARNING",
            WADESK_LOG_JSON="1",  # as in production: a traceback is one line, not a panel
            WADESK_BASE_URL=f"http://{HOST}:8000",
            WADESK_OUTBOX_POLL_SECONDS="0.2",
            WADESK_INGEST_SWEEP_SECONDS="2",
            WADESK_PAIR_RATE_PER_S="10",
            WADESK_PAIR_BURST="100",
        )
        env.update(extra_env or {})
        app_secret = secrets.token_hex(16)
        dep = Deployment(workdir, f"{pg_url}/{database}", app_secret, env)
        run_command([str(WADESK), "db", "upgrade"], env, workdir)
        out = run_command(
            [
                *(str(WADESK), "inbox", "add-whatsapp", "--name", "faults"),
                *("--phone-number-id", PHONE_NUMBER_ID, "--waba-id", WABA_ID),
                *("--access-token", ACCESS_TOKEN, "--app-secret", app_secret),
                *("--display-phone-number", DISPLAY_NUMBER, "--graph-url", f"{sim.url}/graph"),
            ],
            env,
            workdir,
        )
        url = str(json.loads(out.strip().splitlines()[-1])["webhook_url"])
        dep.webhook_path = "/" + url.split("/", 3)[3]
        try:
            yield dep
        finally:
            await dep.stop_all()
            if DEBUG:  # keep the processes' logs
                keep = Path(tempfile.gettempdir()) / f"faults-logs-{database}"
                keep.mkdir(exist_ok=True)
                for path in workdir.glob("*.log"):
                    (keep / path.name).write_bytes(path.read_bytes())


# --- Meta-like inbound load -------------------------------------------------------------------


def wa_id(customer: int) -> str:
    return str(FIRST_WA_ID + customer)


def message_body(wamid: str, customer: int, text: str | None = None) -> bytes:
    sender = wa_id(customer)
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": f"Customer {customer}"}, "wa_id": sender}],
        "messages": [
            {
                "from": sender,
                "id": wamid,
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": text or f"Hello, message {wamid}"},
            }
        ],
    }
    return _envelope(value)


def status_body(wamid: str, customer: int, status: str) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
        "statuses": [
            {
                "id": wamid,
                "status": status,
                "timestamp": str(int(time.time())),
                "recipient_id": wa_id(customer),
            }
        ],
    }
    return _envelope(value)


def _envelope(value: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
        }
    )


@dataclass
class Delivery:
    body: bytes
    key: str  # the wamid it carries (a message's, or a status's message)
    first_sent: float = 0.0  # wall clock of the first attempt
    accepted_at: float = 0.0  # wall clock of the 200 (0: never)
    attempts: int = 0
    outcomes: list[str] = field(default_factory=list)


class MetaSender:
    """Signed deliveries to the servers' ports in turn, each retried until answered 200."""

    def __init__(
        self,
        ports: Callable[[], list[int]],
        path: str,
        app_secret: str,
        *,
        concurrency: int = 64,
        give_up_s: float = 180.0,
    ) -> None:
        self._ports = ports
        self._path = path
        self._secret = app_secret.encode()
        self._slots = asyncio.Semaphore(concurrency)
        self._idle: dict[int, list[Connection]] = {}
        self._turn = itertools.count()
        self.give_up_s = give_up_s
        self.deliveries: list[Delivery] = []
        self.statuses: Counter[str] = Counter()  # every attempt's outcome
        self.latencies_ms: list[float] = []  # of the attempts answered 200

    def raw(self, port: int, body: bytes) -> bytes:
        signature = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        head = (
            f"POST {self._path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"X-Hub-Signature-256: sha256={signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def _attempt(self, port: int, body: bytes) -> str:
        pool = self._idle.setdefault(port, [])
        connection = None
        try:
            while pool and connection is None:
                candidate = pool.pop()
                connection = None if candidate.closed else candidate
            if connection is None:
                async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                    connection = await Connection.open(HOST, port)
            async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
                status = await connection.request(self.raw(port, body))
        except (OSError, ResponseError, TimeoutError) as exc:
            if connection is not None:
                connection.close()
            if DEBUG:
                log(f"attempt on {port}: {exc!r}")
            return type(exc).__name__
        pool.append(connection)
        return str(status)

    async def deliver(self, delivery: Delivery) -> None:
        async with self._slots:
            delivery.first_sent = time.time()
            deadline = time.monotonic() + self.give_up_s
            while True:
                ports = self._ports()
                port = ports[next(self._turn) % len(ports)]
                started = time.perf_counter()
                outcome = await self._attempt(port, delivery.body)
                delivery.attempts += 1
                self.statuses[outcome] += 1
                if outcome == "200":
                    delivery.accepted_at = time.time()
                    self.latencies_ms.append((time.perf_counter() - started) * 1000)
                    return
                delivery.outcomes.append(outcome)
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(RETRY_DELAYS[min(delivery.attempts - 1, len(RETRY_DELAYS) - 1)])

    async def run(self, deliveries: Iterable[Delivery], rate: float) -> None:
        """Start the deliveries at ``rate`` per second; return when all are answered 200
        (or given up)."""
        tasks: list[asyncio.Task[None]] = []
        begin = time.perf_counter()
        for index, delivery in enumerate(deliveries):
            self.deliveries.append(delivery)
            delay = begin + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.deliver(delivery)))
        await asyncio.gather(*tasks)

    def close(self) -> None:
        for pool in self._idle.values():
            for connection in pool:
                connection.close()
        self._idle.clear()

    @property
    def retried(self) -> int:
        return sum(1 for d in self.deliveries if d.attempts > 1)

    @property
    def given_up(self) -> int:
        return sum(1 for d in self.deliveries if not d.accepted_at)


# --- SSE clients ------------------------------------------------------------------------------


class SseClient(asyncio.Protocol):
    """One ``GET /api/v1/events`` stream (HTTP/1.1, chunked). ``received`` maps each event id
    to (kind, wall-clock arrival, payload of message events)."""

    def __init__(self, kinds: frozenset[str] = frozenset({"message.created"})) -> None:
        self.kinds = kinds
        self.transport: asyncio.Transport | None = None
        self.head_done = False
        self.status = 0
        self.raw = bytearray()  # body bytes before de-chunking
        self.text = bytearray()  # de-chunked SSE text
        self.ids: list[int] = []  # every event id, in arrival order (duplicates show here)
        self.message_arrivals: dict[int, float] = {}  # message_id -> first arrival
        self.message_repeats = 0
        self.last_id: int | None = None
        self.closed = asyncio.Event()
        self.opened = asyncio.Event()  # the response head arrived
        self.resets = 0

    async def wait_open(self, timeout: float = 30.0) -> int:
        """The response status, once it arrived (0: none within ``timeout``)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.opened.wait(), timeout)
        return self.status

    @classmethod
    async def open(
        cls, port: int, token: str, last_event_id: int | None = None, **kwargs: Any
    ) -> SseClient:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: cls(**kwargs), HOST, port)
        extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
        request = (
            f"GET /api/v1/events HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n{extra}\r\n"
        )
        assert client.transport is not None
        client.transport.write(request.encode())
        return client

    async def reopen(self, port: int, token: str) -> SseClient:
        """A new stream that resumes after the last id this one saw; the books carry over."""
        self.close()
        fresh = await SseClient.open(port, token, self.last_id, kinds=self.kinds)
        fresh.ids = self.ids
        fresh.message_arrivals = self.message_arrivals
        fresh.message_repeats = self.message_repeats
        fresh.last_id = self.last_id
        fresh.resets = self.resets
        return fresh

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.raw += data
        if not self.head_done:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(bytes(self.raw[9:12]))
            del self.raw[: end + 4]
            self.head_done = True
            self.opened.set()
        self._dechunk()
        while (end := self.text.find(b"\n\n")) >= 0:
            frame = bytes(self.text[:end])
            del self.text[: end + 2]
            self._frame(frame, now)

    def _dechunk(self) -> None:
        while True:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(self.raw[:line_end]).split(b";")[0] or b"0", 16)
            if len(self.raw) < line_end + 2 + size + 2:
                return
            self.text += self.raw[line_end + 2 : line_end + 2 + size]
            del self.raw[: line_end + 2 + size + 2]
            if size == 0:
                # The last chunk: the server ended the stream (the connection may stay open
                # for keep-alive). A browser's EventSource reconnects now, not when the idle
                # connection is closed seconds later.
                self.close()
                self.closed.set()
                return

    def _frame(self, frame: bytes, now: float) -> None:
        event_id: int | None = None
        kind = b""
        data = b""
        for line in frame.split(b"\n"):
            if line.startswith(b"id: "):
                event_id = int(line[4:])
            elif line.startswith(b"event: "):
                kind = line[7:]
            elif line.startswith(b"data: "):
                data = line[6:]
        if event_id is None:
            return
        self.last_id = event_id
        if kind == b"reset":
            self.resets += 1
            return
        if kind == b"cursor":
            return
        self.ids.append(event_id)
        if kind.decode() in self.kinds and data:
            payload = orjson.loads(data).get("payload", {})
            message_id = int(payload.get("message_id", 0))
            if message_id in self.message_arrivals:
                self.message_repeats += 1
            else:
                self.message_arrivals[message_id] = now

    @property
    def duplicate_ids(self) -> int:
        return len(self.ids) - len(set(self.ids))


# --- reading back -----------------------------------------------------------------------------


class Db:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self.c = connection

    @classmethod
    async def connect(cls, dsn: str) -> Db:
        return cls(await asyncpg.connect(dsn))

    async def close(self) -> None:
        await self.c.close()

    async def scalar(self, sql: str, *args: Any) -> Any:
        return await self.c.fetchval(sql, *args)

    async def pending_deliveries(self) -> int:
        sql = "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
        return int(await self.c.fetchval(sql))

    async def wait_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.pending_deliveries() == 0:
                return True
            await asyncio.sleep(0.25)
        return False

    async def messages_like(self, prefix: str) -> dict[str, int]:
        """external_id -> how many message rows carry it."""
        rows = await self.c.fetch(
            "SELECT external_id, count(*) AS n FROM messages WHERE external_id LIKE $1"
            " GROUP BY external_id",
            prefix + "%",
        )
        return {row["external_id"]: int(row["n"]) for row in rows}

    async def message_ids(self, prefix: str) -> dict[int, str]:
        rows = await self.c.fetch(
            "SELECT id, external_id FROM messages WHERE external_id LIKE $1", prefix + "%"
        )
        return {int(row["id"]): row["external_id"] for row in rows}

    async def created_at(self, prefix: str) -> dict[str, float]:
        rows = await self.c.fetch(
            "SELECT external_id, extract(epoch FROM created_at)::float8 AS at FROM messages"
            " WHERE external_id LIKE $1",
            prefix + "%",
        )
        return {row["external_id"]: float(row["at"]) for row in rows}


def fmt_ms(value: float) -> str:
    return "—" if value != value else f"{value:,.0f} ms"  # NaN check


def pct(values: list[float], q: float) -> float:
    return percentile(values, q)


async def api_client(port: int, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
    )


async def create_outbound(
    client: httpx.AsyncClient, conversation_ids: list[int], count: int, tag: str
) -> list[int]:
    """``count`` text messages spread over the conversations, each with a unique text;
    the message ids (the API answers as soon as a message is queued)."""
    slots = asyncio.Semaphore(16)
    ids: list[int] = []

    async def one(index: int) -> None:
        conversation = conversation_ids[index % len(conversation_ids)]
        async with slots:
            problem = ""
            for _ in range(5):
                # A timed-out request is sent again: the Idempotency-Key makes that safe.
                try:
                    response = await client.post(
                        f"/api/v1/conversations/{conversation}/messages",
                        json={"type": "text", "text": f"{tag}-{index}"},
                        headers={"Idempotency-Key": f"{tag}-{index}"},
                    )
                except httpx.TransportError as exc:
                    problem = repr(exc)
                    continue
                if response.status_code in (200, 201):
                    ids.append(int(response.json()["id"]))
                    return
                problem = f"{response.status_code} {response.text[:200]}"
                await asyncio.sleep(0.5)
            raise ScenarioError(f"creating message {index}: {problem}")

    await asyncio.gather(*(one(i) for i in range(count)))
    return ids


def verdict_line(ok: bool) -> str:
    return "pass" if ok else "FAIL"
