"""Server processes for the bench: start, wait until they answer, stop (SIGTERM, then kill)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple

from loadgen import HttpConnection, ResponseError

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
PROBE_TIMEOUT_S = 2.0
SETTLE_SAMPLE_S = 0.5
IDLE_CORES = 0.05  # a server using less CPU than this is taken as started and idle
STOP_TIMEOUT_S = 30.0  # wadesk shuts down gracefully within 25 s
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TAIL_LINES = 40  # of a failed command's output, in the error


class ServerError(RuntimeError):
    pass


class CpuTimes(NamedTuple):
    """CPU seconds used so far; subtract two samples for an interval. A process's time
    includes that of its children that have exited (PostgreSQL backends come and go with the
    pool's connections: their time moves to the postmaster's count when they exit)."""

    machine_s: float  # all processes, summed over the cores (from /proc/stat)
    server_s: float  # the server's processes (its session)
    postgres_s: float  # the PostgreSQL server's processes, whatever database they serve
    bench_s: float  # this process: the load generator

    def __sub__(self, other: tuple[float, ...]) -> CpuTimes:
        return CpuTimes(*(a - b for a, b in zip(self, other, strict=True)))


def cpu_times(server_session: int | None = None) -> CpuTimes:
    server = postgres = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process is gone
        name, _, rest = text.partition(" (")[2].rpartition(") ")
        fields = rest.split()
        ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        if int(fields[3]) == server_session:
            server += ticks
        elif name == "postgres":
            postgres += ticks
    own = os.times()
    return CpuTimes(
        _machine_busy_ticks() / CLOCK_TICKS,
        server / CLOCK_TICKS,
        postgres / CLOCK_TICKS,
        own.user + own.system,
    )


def _machine_busy_ticks() -> int:
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


class Server:
    """A running server process and the workers it started (all in its session)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port

    def cpu_times(self) -> CpuTimes:
        return cpu_times(self.process.pid)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def run_command(argv: list[str], env: Mapping[str, str], cwd: Path) -> str:
    """Run a command to completion; its stdout, or ServerError with its output."""
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = "\n".join(f"{done.stdout}\n{done.stderr}".splitlines()[-TAIL_LINES:])
        raise ServerError(f"{' '.join(argv[:3])} failed:\n{output}")
    return done.stdout


@asynccontextmanager
async def serving(
    argv: list[str],
    port: int,
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    probe: tuple[str, int],
) -> AsyncIterator[Server]:
    """Run a server (listening on ``port``) for the duration of the block. It is up once
    ``GET probe[0]`` answers status ``probe[1]``. It runs in its own session, so that its
    workers can be killed with it."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        await _wait_until_up(process, port, *probe)
        server = Server(process, port)
        await _wait_until_settled(server)
        yield server
    except ServerError as exc:
        raise ServerError(f"{exc}\n--- {log} ---\n{_tail(log)}") from None
    finally:
        await _stop(process)


async def _wait_until_up(
    process: subprocess.Popen[bytes], port: int, path: str, status: int
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    probe = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"the server exited with status {process.returncode}")
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                connection = await HttpConnection.open(HOST, port)
                try:
                    if await connection.request(probe) == status:
                        return
                finally:
                    connection.close()
        except (OSError, ResponseError, TimeoutError):
            pass
        await asyncio.sleep(0.2)
    raise ServerError(f"no answer {status} on {path} within {START_TIMEOUT_S:.0f} s")


async def _wait_until_settled(server: Server) -> None:
    """Once one worker answers, the others may still be starting (importing, building the
    app): wait until the server's processes are idle, as workers without requests are."""
    deadline = time.monotonic() + START_TIMEOUT_S
    used = server.cpu_times().server_s
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_SAMPLE_S)
        before, used = used, server.cpu_times().server_s
        if used - before < SETTLE_SAMPLE_S * IDLE_CORES:
            return
    raise ServerError(f"the server was still busy {START_TIMEOUT_S:.0f} s after answering")


async def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    # The session leader's id is its group's: this also reaches workers left orphaned.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-TAIL_LINES:])
