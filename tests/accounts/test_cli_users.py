"""`wadesk user ...` from the command line, against the test database, audited as the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from sqlalchemy import select

from tests.helpers import auth, create_user
from tests.web.client import submit_login, web_client
from wadesk.accounts.models import User
from wadesk.audit.models import AuditEvent


async def wadesk(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wadesk",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_user_commands_change_roles_deactivate_reset_and_set_passwords(live):
    await create_user(live, email="boss@example.com", role="admin")
    ana_id, ana_token = await create_user(live, email="ana@example.com", role="agent")
    code, out, _ = await wadesk("user", "list")
    assert code == 0 and "ana@example.com" in out and "boss@example.com" in out
    code, _, _ = await wadesk(
        "user", "set-role", "--email", "ana@example.com", "--role", "supervisor"
    )
    assert code == 0
    code, _, err = await wadesk("user", "set-role", "--email", "ana@example.com", "--role", "king")
    assert code == 1 and "role must be one of" in err
    code, out, _ = await wadesk("user", "deactivate", "--email", "ana@example.com")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["tokens"] == 1
    assert (await live.client.get("/api/v1/me", headers=auth(ana_token))).status_code == 401
    code, _, _ = await wadesk("user", "activate", "--email", "ana@example.com")
    assert code == 0
    code, _, err = await wadesk(
        "user", "set-password", "--email", "ana@example.com", "--password", "password12345"
    )
    assert code == 1 and "common" in err
    code, _, _ = await wadesk(
        "user", "set-password", "--email", "ana@example.com", "--password", "tangerine kayak vault"
    )
    assert code == 0
    client = web_client(live)
    assert (
        await submit_login(client, "ana@example.com", "tangerine kayak vault")
    ).status_code == 303
    await client.aclose()
    code, _, _ = await wadesk("user", "reset-mfa", "--email", "ana@example.com")
    assert code == 0
    code, _, err = await wadesk("user", "deactivate", "--email", "nobody@example.com")
    assert code == 1 and "no user" in err
    async with live.runtime.db.session() as session:
        user = await session.get(User, ana_id)
        assert user.role == "supervisor" and user.is_active
        rows = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.actor_type, AuditEvent.actor_id).where(
                    AuditEvent.target_id == str(ana_id), AuditEvent.actor_id == "cli"
                )
            )
        ).all()
    assert [r[0] for r in rows] == [
        "user.role_change",
        "user.deactivate",
        "user.reactivate",
        "user.password_reset",
        "mfa.reset",
    ]
    assert {r[1] for r in rows} == {"system"}
