"""The command line, run as a user would (subprocesses against the test database)."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
from sqlalchemy import func, select

from tests.helpers import auth, envelope, post_signed, settle, text_message
from wadesk.conversations.models import Message

BASE_URL: dict[str, str] = {}


async def wadesk(*args: str, ok: bool = True) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wadesk",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **BASE_URL},
    )
    out, err = await process.communicate()
    if ok:
        assert process.returncode == 0, err.decode()
    return process.returncode or 0, out.decode(), err.decode()


@pytest.fixture(autouse=True)
def _cli_base_url(live):
    BASE_URL["WADESK_BASE_URL"] = live.base_url
    yield
    BASE_URL.clear()


async def test_user_token_inbox_and_simulate_from_the_command_line(live):
    _, out, _ = await wadesk(
        "user",
        "create",
        "--email",
        "Boss@Example.com",
        "--name",
        "Boss",
        "--role",
        "admin",
        "--password",
        "a long enough one",
    )
    assert json.loads(out)["email"] == "boss@example.com"
    _, out, _ = await wadesk(
        "token", "create", "--email", "boss@example.com", "--scopes", "read,write,admin"
    )
    token = out.strip().splitlines()[-1]
    assert token.startswith("wdsk_")
    _, out, _ = await wadesk(
        "inbox",
        "add-whatsapp",
        "--name",
        "Support",
        "--phone-number-id",
        "106540352242922",
        "--waba-id",
        "102290129340398",
        "--access-token",
        "EAAG-cli",
        "--app-secret",
        "cli-secret",
        "--graph-url",
        f"{live.base_url}/simulator/graph",
    )
    inbox = json.loads(out.strip().splitlines()[-1])
    assert inbox["webhook_url"].startswith(live.runtime.settings.base_url + "/webhooks/whatsapp/")
    assert len(inbox["verify_token"]) >= 16
    _, out, _ = await wadesk(
        "simulate",
        "--messages",
        "40",
        "--customers",
        "8",
        "--rate",
        "200",
        "--duplicates",
        "0.25",
        "--json",
    )
    report = json.loads(out.strip().splitlines()[-1])
    assert report["sent"] == 40 and report["accepted"] >= 40 and report["duplicates_sent"] > 0
    await settle(live)
    async with live.runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 40
    listed = await live.client.get("/api/v1/inboxes", headers=auth(token))
    assert [i["name"] for i in listed.json()["items"]] == ["Support"]


async def test_cli_errors_are_clear_and_exit_non_zero(live):
    code, _, err = await wadesk(
        "user", "create", "--email", "x@example.com", "--name", "X", "--password", "short", ok=False
    )
    assert code == 1 and "at least 10 characters" in err
    code, _, err = await wadesk("token", "create", "--email", "nobody@example.com", ok=False)
    assert code == 1 and "no user" in err
    code, _, err = await wadesk(
        "inbox",
        "add-whatsapp",
        "--name",
        "n",
        "--phone-number-id",
        "abc",
        "--access-token",
        "t",
        "--app-secret",
        "s",
        ok=False,
    )
    assert code == 1 and "phone_number_id" in err


async def test_deliveries_list_and_replay(live):
    _, out, _ = await wadesk(
        "inbox",
        "add-whatsapp",
        "--name",
        "S",
        "--phone-number-id",
        "106540352242922",
        "--access-token",
        "t",
        "--app-secret",
        "test-app-secret",
    )
    inbox = json.loads(out.strip().splitlines()[-1])
    odd = {"from": "14155550010", "id": "wamid.ODD", "timestamp": "1700000000", "type": "hologram"}
    await post_signed(live.client, inbox["webhook_url"], envelope([odd]))
    await post_signed(
        live.client, inbox["webhook_url"], envelope([text_message("14155550011", "wamid.OK", "hi")])
    )
    await settle(live)
    _, out, _ = await wadesk("deliveries", "list")
    assert "hologram" in out
    _, out, _ = await wadesk("deliveries", "replay")
    assert out.startswith("1 deliveries")
