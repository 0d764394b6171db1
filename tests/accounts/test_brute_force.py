"""Brute-force limits live in the database: they hold across server processes."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from tests.conftest import free_port
from tests.helpers import create_user
from tests.web.client import PASSWORD, submit_login, web_client
from wadesk.accounts.models import LoginThrottle
from wadesk.db import utcnow


async def _serve(port: int, tmp_path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "WADESK_PORT": str(port),
        "WADESK_BASE_URL": f"http://127.0.0.1:{port}",
        "WADESK_SIMULATOR_ENABLED": "0",
        "WADESK_RUN_WORKER_IN_SERVER": "0",
        "WADESK_VAR_DIR": str(tmp_path / f"var{port}"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wadesk",
        "serve",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    raise AssertionError("server did not start")


@pytest.fixture
async def two_servers(live, tmp_path):
    ports = [free_port(), free_port()]
    processes = [await _serve(port, tmp_path) for port in ports]
    try:
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await process.wait()


class Site:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url


async def test_account_lockout_holds_across_two_server_processes(live, two_servers):
    await create_user(live, email="ana@example.com", role="agent")
    clients = [web_client(Site(url)) for url in two_servers]
    limit = live.runtime.settings.login_max_failures_per_account
    statuses = []
    for attempt in range(limit):
        response = await submit_login(
            clients[attempt % 2], "ana@example.com", f"wrong guess {attempt}"
        )
        statuses.append(response.status_code)
    # The last failure reached the limit: the account is locked on both processes, even for
    # the right password, with the same message whether or not the account exists.
    assert statuses == [401] * (limit - 1) + [429]
    for client in clients:
        locked = await submit_login(client, "ana@example.com", PASSWORD)
        assert locked.status_code == 429, locked.text
        assert int(locked.headers["retry-after"]) > 0
        assert "Too many attempts" in locked.text
        assert "wadesk_session" not in locked.headers.get("set-cookie", "")
    for client in clients:
        await client.aclose()


async def test_locks_grow_with_each_further_failure_and_success_clears_the_account(live):
    await create_user(live, email="ana@example.com", role="agent")
    settings = live.runtime.settings
    client = web_client(live)

    async def lock_seconds() -> int:
        async with live.runtime.db.session() as session:
            row = await session.scalar(
                select(LoginThrottle).where(LoginThrottle.key.like("acct:%"))
            )
            return round((row.locked_until - utcnow()).total_seconds())

    async def unlock() -> None:
        async with live.runtime.db.session() as session:
            await session.execute(
                update(LoginThrottle).values(locked_until=utcnow() - timedelta(seconds=1))
            )

    for attempt in range(settings.login_max_failures_per_account):
        await submit_login(client, "ana@example.com", f"wrong {attempt}")
    first = await lock_seconds()
    assert abs(first - settings.login_lock_base_seconds) <= 2
    await unlock()
    assert (await submit_login(client, "ana@example.com", "wrong again")).status_code == 429
    second = await lock_seconds()
    assert abs(second - 2 * settings.login_lock_base_seconds) <= 2
    await unlock()
    assert (await submit_login(client, "ana@example.com", PASSWORD)).status_code == 303
    async with live.runtime.db.session() as session:
        keys = (await session.scalars(select(LoginThrottle.key))).all()
    assert not [k for k in keys if k.startswith("acct:")]  # the account starts afresh
    assert [k for k in keys if k.startswith("ip:")]  # the IP's count does not
    await client.aclose()


async def test_one_ip_guessing_many_accounts_is_locked_per_ip(live, settings):
    settings.login_max_failures_per_ip = 4
    for n in range(5):
        await create_user(live, email=f"user{n}@example.com", role="agent")
    client = web_client(live)
    statuses = [
        (await submit_login(client, f"user{n}@example.com", "guess guess guess")).status_code
        for n in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    # A fifth account, never guessed: this IP is locked out of it too.
    fifth = await submit_login(client, "user4@example.com", PASSWORD)
    assert fifth.status_code == 429
    await client.aclose()


async def test_unknown_accounts_are_throttled_like_real_ones(live):
    client = web_client(live)
    limit = live.runtime.settings.login_max_failures_per_account
    statuses = [
        (await submit_login(client, "ghost@example.com", f"guess {n}")).status_code
        for n in range(limit + 1)
    ]
    assert statuses == [401] * (limit - 1) + [429, 429]
    await client.aclose()
