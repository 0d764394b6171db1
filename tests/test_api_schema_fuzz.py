"""Schemathesis against the whole /api/v1, generated from our own /openapi.json: whatever a
client sends that the schema allows (and a good deal it does not), the answer is never a 500
and every documented answer matches its schema.

The server runs in a thread with its own event loop (schemathesis' tests are synchronous), on
the test database, with an admin's token and some data to find. Examples per operation are
bounded so that this fits in ``make test``; raise ``WADESK_FUZZ_EXAMPLES`` for a longer hunt.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import Live, _empty_database, free_port
from tests.helpers import (
    auth,
    create_inbox,
    create_user,
    envelope,
    post_signed,
    settle,
    text_message,
)

EXAMPLES = int(os.environ.get("WADESK_FUZZ_EXAMPLES", "12"))
# Left out, and why: a stream that never ends, and calls that would end the fuzzer's own
# access (revoking its token or sessions, demoting or deactivating its user) and so stop
# testing everything after them. Their bad input is covered by their own tests.
SKIPPED = {
    ("GET", "/api/v1/events"),
    ("DELETE", "/api/v1/tokens/{token_id}"),
    ("DELETE", "/api/v1/me/sessions"),
    ("DELETE", "/api/v1/me/sessions/{session_id}"),
    ("PATCH", "/api/v1/users/{user_id}"),
    ("POST", "/api/v1/users/{user_id}/deactivate"),
}


class ThreadedServer:
    def __init__(self, tmp: Path) -> None:
        from wadesk.app import create_app
        from wadesk.config import Settings

        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.settings = Settings(
            var_dir=tmp / "var",
            port=port,
            base_url=self.base_url,
            outbox_poll_seconds=0.2,
            graph_timeout_seconds=3.0,
            links_create_per_hour=100_000,
        )
        self.app = create_app(self.settings)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="error")
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        for _ in range(1000):
            if self.server.started:
                return self
            if not self.thread.is_alive():
                break
            threading.Event().wait(0.01)
        raise RuntimeError("the server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


async def _seed(server: ThreadedServer) -> str:
    """An admin's token, an inbox, a conversation with a message: ids worth guessing."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        live = Live(server.app, server.app.state.runtime, server.base_url, client)
        _, token = await create_user(live, email="fuzz@example.com", role="admin")
        inbox = await create_inbox(live)
        await post_signed(
            client,
            inbox["webhook_url"],
            envelope([text_message("5511987654321", "wamid.fuzz.1", "Olá, fuzz")]),
        )
        await settle(live)
        await client.post(
            "/api/v1/links",
            json={"inbox_id": inbox["id"], "message": "Oi", "slug": "fuzz"},
            headers=auth(token),
        )
    return str(token)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    asyncio.run(_empty_database())
    with ThreadedServer(tmp_path_factory.mktemp("fuzz")) as server:
        token = server.run(_seed(server))
        yield server.base_url, token


def test_api_never_fails_and_matches_its_schema(fuzz_target: tuple[str, str]) -> None:
    """One hypothesis run per operation; every failing operation is reported, not only the
    first."""
    base_url, token = fuzz_target
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json").include(
        path_regex=r"^/api/v1/"
    )
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        tested += 1

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            headers = {**(case.headers or {}), **auth(token)}
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance], headers=headers
            )

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect; fail once with all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert tested > 40
    assert not failures, "\n\n".join(failures)
