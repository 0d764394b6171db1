"""Health, readiness, metrics, and logs that never carry secrets or message bodies."""

from __future__ import annotations

import secrets

import httpx
import pytest
import structlog.testing

from tests.helpers import (
    PHONE_NUMBER_ID,
    auth,
    create_inbox,
    create_user,
    envelope,
    eventually,
    post_signed,
    settle,
    text_message,
)
from wadesk.channels.simulator.faults import FaultPlan
from wadesk.logging import configure_logging


async def test_health_ready_and_metrics(live):
    assert (await live.client.get("/healthz")).json() == {"status": "ok"}
    assert (await live.client.get("/readyz")).json()["status"] == "ready"
    inbox = await create_inbox(live)
    await post_signed(
        live.client, inbox["webhook_url"], envelope([text_message("14155550001", "wamid.M1", "hi")])
    )
    await live.client.post(inbox["webhook_url"], content=b"{}")  # unsigned
    await settle(live)
    metrics = (await live.client.get("/metrics")).text
    for name in (
        'wadesk_webhook_deliveries_received_total{channel="whatsapp"}',
        'wadesk_webhook_deliveries_rejected_total{channel="whatsapp",reason="signature"}',
        'wadesk_webhook_deliveries_processed_total{outcome="processed"}',
        "wadesk_messages_received_total",
        "wadesk_processing_latency_seconds_bucket",
        "wadesk_outbox_depth",
    ):
        assert name in metrics, name


async def test_database_down_means_503_so_meta_retries(settings):
    from wadesk.app import create_app

    settings.database_url = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    settings.simulator_enabled = False
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        ready = await client.get("/readyz")
        webhook = await client.post(
            "/webhooks/whatsapp", content=b"{}", headers={"X-Hub-Signature-256": "sha256=00"}
        )
    await app.state.runtime.close()
    assert ready.status_code == 503
    assert webhook.status_code == 503
    assert webhook.json()["error"]["code"] == "unavailable"


@pytest.mark.parametrize(
    ("sqlstate", "unavailable"),
    [("57P03", True), ("57P01", True), ("08006", True), ("23505", False), (None, False)],
)
def test_a_database_shutting_down_is_unavailable_not_a_bug(sqlstate, unavailable):
    """asyncpg raises its own CannotConnectNowError (57P03, "the database system is shutting
    down") while connecting, unwrapped by SQLAlchemy: the webhook must answer 503, not 500."""
    from wadesk.errors import backend_unavailable

    class DriverError(Exception):
        pass

    error = DriverError("the database system is shutting down")
    error.sqlstate = sqlstate  # type: ignore[attr-defined]
    assert backend_unavailable(error) is unavailable
    assert backend_unavailable(ConnectionRefusedError()) is True
    assert backend_unavailable(ValueError("bad input")) is False


async def test_a_warning_says_so_exactly_when_postgresql_runs_without_autovacuum(settings, backend):
    """The start-up check reads the real setting: whichever way this server is configured,
    the warning is there if and only if ``SHOW autovacuum`` is not on."""
    if backend != "postgresql":
        pytest.skip("autovacuum is PostgreSQL's (SQLite has no such setting)")
    from sqlalchemy import text

    from wadesk.db import Database
    from wadesk.runtime import check_autovacuum

    db = Database(settings)
    try:
        async with db.session() as session:
            setting = await session.scalar(text("SHOW autovacuum"))
        with structlog.testing.capture_logs() as logs:
            await check_autovacuum(db)
    finally:
        await db.dispose()
    assert setting in ("on", "off")
    warnings = [e for e in logs if e["event"] == "database.autovacuum_off"]
    if setting == "on":
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warnings[0]["log_level"] == "warning" and "VACUUM ANALYZE" in warnings[0]["advice"]


async def test_the_autovacuum_check_is_quiet_when_the_database_is_away(settings):
    from wadesk.db import Database
    from wadesk.runtime import check_autovacuum

    settings.database_url = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    db = Database(settings)
    try:
        with structlog.testing.capture_logs() as logs:
            await check_autovacuum(db)
    finally:
        await db.dispose()
    assert [e for e in logs if e["event"] == "database.autovacuum_off"] == []


@pytest.fixture
def debug_logs(settings):
    settings.log_level = "DEBUG"
    settings.outbox_backoff_base_seconds = 0.05
    return settings


async def test_logs_carry_no_secrets_and_no_message_text(debug_logs, live, capsys):
    await create_inbox(live)
    live.simulator.set_faults(
        FaultPlan(recipients={"5511912345678": "http_500"}, recipient_fault_times=1)
    )
    _, token = await create_user(live, email="admin@example.com")
    await live.simulator.customer_sends(
        PHONE_NUMBER_ID, "5511912345678", "Ana", {"type": "text", "text": "my secret address"}
    )
    await settle(live)
    conversation = (await live.client.get("/api/v1/conversations", headers=auth(token))).json()[
        "items"
    ][0]
    sent = await live.client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        json={"text": "private reply"},
        headers=auth(token),
    )

    async def delivered() -> bool:
        got = await live.client.get(
            f"/api/v1/conversations/{conversation['id']}/messages", headers=auth(token)
        )
        return any(
            m["id"] == sent.json()["id"] and m["status"] == "read" for m in got.json()["items"]
        )

    await eventually(delivered)
    out, err = capsys.readouterr()
    logs = out + err
    assert "outbox.retry" in logs  # the logs are there, and say what happened
    for secret in (
        "EAAG-test-token",
        "test-app-secret",
        "verify-me-please",
        token,
        "my secret address",
        "private reply",
    ):
        assert secret not in logs


async def test_a_serving_process_freezes_its_start_up_objects(settings):
    """WADESK_GC_FREEZE (default on): after start-up, full collections skip what start-up
    left alive (they paused a loaded server ~200 ms each); off in this suite (conftest)."""
    import gc

    from wadesk.app import create_app

    settings.gc_freeze = True
    settings.simulator_enabled = False
    app = create_app(settings)
    before = gc.get_freeze_count()
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > before + 1_000
    finally:
        gc.unfreeze()


def test_a_traceback_in_development_logs_shows_no_local_variables(settings, capsys):
    """Readable logs (development) render exceptions with rich; its default shows each
    frame's locals, which hold tokens and message text."""
    settings.log_json = False
    configure_logging(settings)

    def send(headers: dict[str, str], text: str) -> None:
        raise RuntimeError("the request failed")

    token = "EAAG" + secrets.token_hex(8)  # made at run time: the source lines are shown
    address = "street " + secrets.token_hex(8)
    try:
        send({"Authorization": f"Bearer {token}"}, f"my home is at {address}")
    except RuntimeError:
        structlog.get_logger("tests").exception("send.failed")
    err = capsys.readouterr().err
    assert "send.failed" in err and "the request failed" in err  # the traceback is there
    assert token not in err
    assert address not in err


async def test_a_starting_process_opens_its_database_connections_before_the_first_request(
    settings, backend
):
    """WADESK_DB_WARM_UP (default on; off in this suite): each new PostgreSQL connection costs
    its handshake and the driver's type set-up, which the first webhooks after a start paid."""
    from tests.conftest import free_port
    from wadesk.db import Database
    from wadesk.runtime import Runtime

    if backend == "sqlite":
        pytest.skip("SQLite opens its one connection on first use; nothing to warm")
    settings.db_warm_up = True
    settings.db_pool_size = 3
    runtime = Runtime(settings, run_workers=False)
    try:
        await runtime.start()
        assert runtime.db.engine.pool.checkedin() >= 3  # type: ignore[attr-defined]
    finally:
        await runtime.stop()
    # A database that cannot be reached does not stop a start: the loops retry anyway.
    settings.database_url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none"
    unreachable = Database(settings)
    try:
        with structlog.testing.capture_logs() as logs:
            assert await unreachable.warm_up() == 0
        assert [e["event"] for e in logs] == ["db.warm_up_failed"]
    finally:
        await unreachable.dispose()
