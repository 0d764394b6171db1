"""A lean HTTP/1.1 load generator: keep-alive connections on a raw asyncio protocol.

The bench shares 2 cores with the servers it measures, so every cycle the generator spends
is taken from them. httpx was measured first and could not serve as the generator: with 64
connections its pool bookkeeping burnt a whole core for ~60 requests/s, where this client
sends ~11,000/s on about half a core (docs/benchmarks.md). It speaks only what the bench
needs: one request at a time per connection, responses framed by Content-Length.

Two shapes of load:
- :func:`closed_loop`: ``concurrency`` connections send back to back (the maximum rate);
- :func:`open_loop`: requests start on a fixed schedule whatever the answers (a given rate);
  latency counts from the scheduled start, so a stalled server cannot hide its queueing.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

REQUEST_TIMEOUT_S = 30.0
RECONNECT_PAUSE_S = 0.05
TAIL_S = 10.0  # open loop: answers are awaited this long (at most) after the last one was due
HEADER_END = b"\r\n\r\n"

# index of the request in its run -> the raw HTTP request
RequestFactory = Callable[[int], bytes]


class ResponseError(Exception):
    """The connection cannot carry on (closed, or an answer this client does not read)."""


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; ``request`` sends raw bytes and returns the status code."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(cls, host, port)
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ResponseError(f"connection lost: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            self._complete()
        except ResponseError as exc:
            self._fail(exc)
            self.close()

    async def request(self, raw: bytes) -> int:
        if self.closed or self._transport is None:
            raise ResponseError("connection closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(raw)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _complete(self) -> None:
        end = self._buffer.find(HEADER_END)
        if end < 0 or self._waiter is None:
            return
        head = bytes(self._buffer[:end]).lower()
        try:
            status = int(head[9:12])
            length = int(head.split(b"\r\ncontent-length:", 1)[1].split(b"\r\n", 1)[0])
        except (ValueError, IndexError) as exc:
            raise ResponseError(f"unreadable response head: {head[:200]!r}") from exc
        total = end + len(HEADER_END) + length
        if len(self._buffer) < total:
            return
        del self._buffer[:total]
        if not self._waiter.done():
            self._waiter.set_result(status)

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)


@dataclass
class LoadResult:
    sent: int = 0
    accepted: int = 0  # answered 200
    failures: Counter[str] = field(default_factory=Counter)  # non-200 answers and errors
    unanswered: int = 0  # open loop: abandoned at the end, the server being too slow
    latencies_ms: list[float] = field(default_factory=list)
    started_wall: float = 0.0  # time.time() of the first request
    elapsed_s: float = 0.0  # first request to last answer

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    @property
    def answered(self) -> int:
        return self.accepted + self.errors

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); NaN for no values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


class _Run:
    """Book-keeping shared by the requests of one load run."""

    def __init__(
        self, host: str, port: int, make_request: RequestFactory, result: LoadResult | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.make_request = make_request
        self.result = result or LoadResult()
        self.started = 0.0
        self._connections: list[HttpConnection] = []

    async def connect(self, count: int = 1) -> list[HttpConnection]:
        opening = (HttpConnection.open(self.host, self.port) for _ in range(count))
        connections = list(await asyncio.gather(*opening))
        self._connections.extend(connections)
        return connections

    def begin(self) -> None:
        self.result.started_wall = time.time()
        self.started = time.perf_counter()

    def end(self) -> LoadResult:
        self.result.elapsed_s = time.perf_counter() - self.started
        for connection in self._connections:
            connection.close()
        return self.result

    async def send(self, connection: HttpConnection, index: int, since: float) -> HttpConnection:
        """Send request ``index``, record it (latency from ``since``), and return a connection
        fit for the next request: the same one, or a fresh one if it broke."""
        self.result.sent += 1
        try:
            if connection.closed:
                (connection,) = await self.connect()
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                status = await connection.request(self.make_request(index))
        except (OSError, ResponseError, TimeoutError) as exc:
            self.result.failures[type(exc).__name__] += 1
            connection.close()
            await asyncio.sleep(RECONNECT_PAUSE_S)
            return connection
        self.result.latencies_ms.append((time.perf_counter() - since) * 1000)
        if status == 200:
            self.result.accepted += 1
        else:
            self.result.failures[f"HTTP {status}"] += 1
        return connection


async def closed_loop(
    host: str, port: int, make_request: RequestFactory, *, seconds: float, concurrency: int
) -> LoadResult:
    """``concurrency`` connections each send their next request as soon as one is answered."""
    run = _Run(host, port, make_request)
    indexes = itertools.count()
    connections = await run.connect(concurrency)
    run.begin()
    deadline = time.perf_counter() + seconds

    async def worker(connection: HttpConnection) -> None:
        while time.perf_counter() < deadline:
            connection = await run.send(connection, next(indexes), time.perf_counter())

    await asyncio.gather(*(worker(c) for c in connections))
    return run.end()


async def open_loop(
    host: str,
    port: int,
    make_request: RequestFactory,
    *,
    rate: float,
    seconds: float,
    concurrency: int,
    live: LoadResult | None = None,
) -> LoadResult:
    """Request ``i`` is due at ``i / rate`` s; at most ``concurrency`` are in flight, the next
    one waits here for a connection (and that wait counts in its latency). ``live``, if
    given, is the result filled in as the run goes (to watch it) and returned.

    A server slower than ``rate`` makes requests queue here; to keep the run bounded, those
    not answered ``TAIL_S`` (or half the run, if shorter) after the last one was due are
    abandoned and counted in
    ``unanswered`` (their latency, unknown, is left out of the percentiles). Requests wait
    in this loop, not as tasks, so that an overloaded server costs the generator nothing.
    """
    run = _Run(host, port, make_request, live)
    idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for connection in await run.connect(concurrency):
        idle.put_nowait(connection)

    async def one(connection: HttpConnection, index: int, due: float) -> None:
        idle.put_nowait(await run.send(connection, index, due))

    run.begin()
    total = round(rate * seconds)
    deadline = run.started + seconds + min(TAIL_S, seconds / 2)
    in_flight: set[asyncio.Task[None]] = set()
    dispatched = 0
    for index in range(total):
        due = run.started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.perf_counter())):
                connection = await idle.get()
        except TimeoutError:
            break
        task = asyncio.create_task(one(connection, index, due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        dispatched += 1
    unanswered: set[asyncio.Task[None]] = set()
    if in_flight:
        _, unanswered = await asyncio.wait(
            in_flight, timeout=max(0.0, deadline - time.perf_counter())
        )
        for task in unanswered:
            task.cancel()
        await asyncio.gather(*unanswered, return_exceptions=True)
    run.result.unanswered = total - dispatched + len(unanswered)
    return run.end()
