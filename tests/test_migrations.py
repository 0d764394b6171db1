"""Migrations run up and down on the backend under test, and match the models exactly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

import wadesk.models
from wadesk.db import Base


@pytest.fixture
def scratch_url(backend, tmp_path: Path):
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
        return
    import asyncpg

    name = f"wadesk_mig_{uuid.uuid4().hex[:8]}"
    base = os.environ["WADESK_DATABASE_URL"].rsplit("/", 1)[0]
    admin = base.replace("postgresql+asyncpg", "postgresql") + "/postgres"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield f"{base}/{name}"
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def wadesk(url: str, *args: str) -> None:
    env = {**os.environ, "WADESK_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "wadesk", *args], check=True, env=env, capture_output=True
    )


def test_upgrade_downgrade_upgrade_and_no_drift(scratch_url):
    """Runs in subprocesses and its own event loop: a sync test."""
    wadesk(scratch_url, "db", "upgrade")
    wadesk(scratch_url, "db", "downgrade", "base")
    wadesk(scratch_url, "db", "upgrade")

    async def drift() -> list[object]:
        engine = create_async_engine(scratch_url)
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        await engine.dispose()
        return list(diff)

    assert asyncio.run(drift()) == [], "models and migrations differ"
