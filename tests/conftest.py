"""Test bed: a real database (SQLite file or PostgreSQL), migrated once, emptied between tests,
and wadesk served over real HTTP by uvicorn on a free port, with the simulator mounted.

Choose the database with ``--db sqlite`` (default) or ``--db postgresql``
(``WADESK_TEST_PG_URL``, default postgresql+asyncpg://postgres@127.0.0.1:5432/wadesk_test).
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

_TMP = Path(tempfile.mkdtemp(prefix="wadesk-tests-"))
os.environ.setdefault("WADESK_SECRET_KEY", "test-secret-key-not-for-production")
os.environ["WADESK_VAR_DIR"] = str(_TMP / "var")
os.environ["WADESK_ENV"] = "test"
os.environ["WADESK_LOG_LEVEL"] = "WARNING"
# One process runs every test: no app of one test should freeze objects for the rest.
os.environ["WADESK_GC_FREEZE"] = "0"
os.environ["WADESK_DB_WARM_UP"] = "0"  # a test starts many runtimes: open connections lazily

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/wadesk_test"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("WADESK_TEST_DB", "sqlite"),
        choices=("sqlite", "postgresql"),
        help="database backend for the tests",
    )


def pytest_configure(config: pytest.Config) -> None:
    backend = config.getoption("--db")
    if backend == "postgresql":
        url = os.environ.get("WADESK_TEST_PG_URL", PG_DEFAULT)
        _recreate_pg_database(url)
    else:
        url = f"sqlite+aiosqlite:///{_TMP / 'test.db'}"
    os.environ["WADESK_DATABASE_URL"] = url
    from wadesk import migrate
    from wadesk.config import get_settings

    get_settings.cache_clear()
    migrate.upgrade()


def _backend_line() -> str:
    url = os.environ.get("WADESK_DATABASE_URL", "")
    return f"wadesk database: {url.split('+', 1)[0]} ({url})"


def pytest_report_header(config: pytest.Config) -> str:
    return _backend_line()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # Printed even with -q: CI checks that the PostgreSQL run happened.
    terminalreporter.write_line(_backend_line())


def _recreate_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0].replace("postgresql+asyncpg", "postgresql") + "/postgres"

    async def main() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(main())


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> str:
    return str(pytestconfig.getoption("--db"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _empty_database() -> None:
    from sqlalchemy import text

    import wadesk.models  # noqa: F401
    from wadesk.config import get_settings
    from wadesk.db import Base, create_engine

    engine = create_engine(get_settings())
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))
    await engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    from wadesk.config import Settings

    port = free_port()
    return Settings(
        var_dir=tmp_path / "var",
        port=port,
        base_url=f"http://127.0.0.1:{port}",
        outbox_poll_seconds=0.2,
        ingest_sweep_seconds=2.0,
        graph_timeout_seconds=3.0,
    )


@pytest.fixture
def fast_retries(settings: Any) -> Any:
    """Sends retried within a fraction of a second (and an unanswered one after 0.5 s)."""
    settings.outbox_backoff_base_seconds = 0.05
    settings.outbox_backoff_max_seconds = 0.2
    settings.outbox_unanswered_wait_seconds = 0.5
    return settings


@dataclass
class Live:
    app: Any
    runtime: Any
    base_url: str
    client: httpx.AsyncClient

    @property
    def simulator(self) -> Any:
        return self.app.state.simulator


@pytest.fixture
async def live(settings: Any) -> AsyncIterator[Live]:
    """wadesk on a real port, with its workers and the simulator mounted at /simulator."""
    from wadesk.app import create_app

    await _empty_database()
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=settings.base_url, timeout=10) as client:
        try:
            yield Live(app, app.state.runtime, settings.base_url, client)
        finally:
            server.should_exit = True
            await task


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def fixtures_dir() -> Iterator[Path]:
    yield Path(__file__).parent / "fixtures"
