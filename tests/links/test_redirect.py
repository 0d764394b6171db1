"""/c/<slug>: the redirect to wa.me, its friendly errors, and clicks counted exactly once."""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select, update

from tests.conftest import free_port
from tests.helpers import auth, create_user
from tests.links.conftest import new_link, raw_requests
from wadesk.db import Database, utcnow
from wadesk.links import clicks as clicks_module
from wadesk.links.clicks import ClickRecorder, visitor_hash
from wadesk.links.models import Link, LinkClickDay, LinkClickVisitor

BROWSER = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126 Mobile Safari/537.36"


@pytest.fixture
def settings(settings):
    # Flushes run all along the tests, while clicks are being counted.
    settings.links_click_flush_seconds = 0.05
    return settings


async def day_row(live: Any, link_id: int) -> tuple[int, int, int]:
    await live.app.state.links.clicks.flush()
    async with live.runtime.db.session() as session:
        row = (
            await session.execute(
                select(
                    func.coalesce(func.sum(LinkClickDay.clicks), 0),
                    func.coalesce(func.sum(LinkClickDay.uniques), 0),
                    func.coalesce(func.sum(LinkClickDay.bot_clicks), 0),
                ).where(LinkClickDay.link_id == link_id)
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def test_redirects_to_wa_me_with_the_prefilled_text(live, admin):
    link = await new_link(live, admin, slug="promo-natal", message="Olá! Quero a promoção 🎄")
    for path in ("/c/promo-natal", "/c/Promo-Natal", "/c/PROMO-NATAL/", "/c/promo-natal?utm=x"):
        response = await live.client.get(path, headers={"User-Agent": BROWSER})
        assert response.status_code == 302
        assert response.headers["location"] == link["wa_me_url"]
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["location"].startswith("https://wa.me/5511987654321?text=")
    assert await day_row(live, link["id"]) == (4, 1, 0)
    head = await live.client.head("/c/promo-natal")
    assert head.status_code == 302 and head.headers["location"] == link["wa_me_url"]
    assert await day_row(live, link["id"]) == (4, 1, 0), "HEAD is not a click"


async def test_unknown_inactive_and_expired_links_get_friendly_pages(live, admin):
    link = await new_link(live, admin, slug="verao")
    missing = await live.client.get("/c/nao-existe")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert "This chat link does not exist" in missing.text
    await live.client.get("/c/verao")  # cached now: deactivation must still show at once
    await live.client.post(f"/api/v1/links/{link['id']}/deactivate", headers=admin)
    gone = await live.client.get("/c/verao")
    assert gone.status_code == 410 and "no longer active" in gone.text
    assert "wa.me" not in gone.text
    await live.client.post(f"/api/v1/links/{link['id']}/activate", headers=admin)
    assert (await live.client.get("/c/verao")).status_code == 302
    async with live.runtime.db.session() as session:
        await session.execute(update(Link).values(expires_at=utcnow() - timedelta(minutes=1)))
    live.app.state.links.resolver.invalidate()
    expired = await live.client.get("/c/verao")
    assert expired.status_code == 410 and "has expired" in expired.text
    # The campaign ended, the business did not: the number is offered, without the text.
    assert 'href="https://wa.me/5511987654321"' in expired.text
    clicks, _, _ = await day_row(live, link["id"])
    assert clicks == 2  # the two redirects; the error pages count nothing


@pytest.mark.parametrize(
    "path",
    [
        "/c/https:%2F%2Fevil.example",
        "/c/%2F%2Fevil.example",
        "/c/..%2F..%2Fapi",
        "/c/evil.example",
        "/c//evil.example",
        "/c/a%0d%0aLocation:%20https://evil.example",
        "/c/" + "a" * 65,
        "/c/promo%00",
    ],
)
async def test_no_open_redirect(live, admin, path):
    await new_link(live, admin, slug="promo")
    response = await live.client.get(path)
    assert response.status_code in (404, 405)
    assert "location" not in response.headers


async def test_concurrent_redirects_count_each_click_exactly_once(live, admin):
    link = await new_link(live, admin, slug="black-friday")
    other = await new_link(live, admin, slug="cyber-monday")
    port = int(live.base_url.rsplit(":", 1)[1])
    requests = [
        *(("/c/black-friday", f"{BROWSER} visitor/{i % 40}") for i in range(400)),
        *(("/c/cyber-monday", f"{BROWSER} visitor/{i % 40}") for i in range(150)),
        *(("/c/black-friday", f"{BROWSER} visitor/{i % 40}") for i in range(50)),
    ]
    statuses = await raw_requests(port, requests, connections=30)
    assert statuses == [302] * 600
    assert await day_row(live, link["id"]) == (450, 40, 0)
    assert await day_row(live, other["id"]) == (150, 40, 0)
    # Another flush writes nothing twice.
    assert await live.app.state.links.clicks.flush() == 0
    assert await day_row(live, link["id"]) == (450, 40, 0)


async def test_link_previews_and_crawlers_are_counted_apart(live, admin):
    link = await new_link(live, admin, slug="preview-me")
    for agent in (
        "WhatsApp/2.23.20.0 A",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "TelegramBot (like TwitterBot)",
        "",
        BROWSER,
    ):
        response = await live.client.get("/c/preview-me", headers={"User-Agent": agent})
        assert response.status_code == 302
    assert await day_row(live, link["id"]) == (1, 1, 5)


async def test_visitors_are_daily_keyed_hashes_not_addresses(live, admin):
    link = await new_link(live, admin, slug="privacy")
    await live.client.get("/c/privacy", headers={"User-Agent": BROWSER})
    await live.app.state.links.clicks.flush()
    async with live.runtime.db.session() as session:
        visitors = (await session.scalars(select(LinkClickVisitor.visitor))).all()
    assert len(visitors) == 1 and re.fullmatch(r"[0-9a-f]{32}", visitors[0])
    assert "127.0.0.1" not in visitors[0]
    secret = live.runtime.settings.resolved_secret_key()
    today = utcnow().date()
    assert visitors[0] == visitor_hash(secret, today, link["id"], "127.0.0.1", BROWSER)
    # Tomorrow's salt is another: the same person cannot be followed across days or links.
    tomorrow = visitor_hash(secret, today + timedelta(days=1), link["id"], "127.0.0.1", BROWSER)
    other_link = visitor_hash(secret, today, link["id"] + 1, "127.0.0.1", BROWSER)
    assert len({visitors[0], tomorrow, other_link}) == 3


async def test_old_visitor_hashes_are_pruned_and_counts_stay(live, admin):
    link = await new_link(live, admin, slug="prune")
    settings = live.runtime.settings
    recorder = ClickRecorder(live.runtime.db, secret_key=settings.resolved_secret_key())
    old = utcnow() - timedelta(days=5)
    recorder.record(link["id"], ip="10.0.0.1", user_agent=BROWSER, now=old)
    recorder.record(link["id"], ip="10.0.0.2", user_agent=BROWSER)
    await recorder.flush()
    assert await recorder.prune() == 1
    async with live.runtime.db.session() as session:
        days = (
            await session.execute(
                select(LinkClickDay.day, LinkClickDay.clicks, LinkClickDay.uniques).order_by(
                    LinkClickDay.day
                )
            )
        ).all()
        left = (await session.scalars(select(LinkClickVisitor.day))).all()
    assert [tuple(d) for d in days] == [(old.date(), 1, 1), (utcnow().date(), 1, 1)]
    assert left == [utcnow().date()]


async def test_a_failed_write_keeps_the_clicks_for_the_next(live, admin, monkeypatch):
    link = await new_link(live, admin, slug="retry")
    # A buffer of its own, without the background loop: this test decides when it writes.
    settings = live.runtime.settings
    recorder = ClickRecorder(live.runtime.db, secret_key=settings.resolved_secret_key())
    real = clicks_module.write_clicks
    failures = 0

    async def failing(*args: Any, **kwargs: Any) -> None:
        nonlocal failures
        failures += 1
        raise OSError("database unreachable")

    monkeypatch.setattr(clicks_module, "write_clicks", failing)
    for i in range(7):
        recorder.record(link["id"], ip=f"10.0.0.{i}", user_agent=BROWSER)
    with pytest.raises(OSError):
        await recorder.flush()
    assert failures == 1 and recorder.pending == 7
    recorder.record(link["id"], ip="10.0.0.1", user_agent=BROWSER)
    monkeypatch.setattr(clicks_module, "write_clicks", real)
    assert await recorder.flush() == 8
    assert await day_row(live, link["id"]) == (8, 7, 0)


async def test_several_processes_add_up(live, admin):
    """Two click buffers (as two server processes have) write the same rows concurrently."""
    link = await new_link(live, admin, slug="shared")
    settings = live.runtime.settings
    databases = [Database(settings), Database(settings)]
    try:
        recorders = [
            ClickRecorder(db, secret_key=settings.resolved_secret_key()) for db in databases
        ]
        for round_ in range(5):
            for index, recorder in enumerate(recorders):
                for i in range(100):
                    # Visitors overlap between the processes: each is counted once.
                    recorder.record(
                        link["id"], ip=f"10.1.{round_}.{i % 30}", user_agent=f"{BROWSER} {index}"
                    )
            written = await asyncio.gather(*(r.flush() for r in recorders))
            assert written == [100, 100]
    finally:
        for db in databases:
            await db.dispose()
    clicks, uniques, _ = await day_row(live, link["id"])
    assert clicks == 1000
    assert uniques == 2 * 5 * 30


async def test_clicks_counted_in_memory_are_written_at_graceful_shutdown(live, admin, settings):
    """A second server with flushes an hour apart: only the shutdown can write its clicks."""
    from wadesk.app import create_app

    link = await new_link(live, admin, slug="shutdown")
    other_settings = settings.model_copy(
        update={
            "links_click_flush_seconds": 3600.0,
            "port": free_port(),
            "simulator_enabled": False,
        }
    )
    app = create_app(other_settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=other_settings.port, log_level="warning", lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{other_settings.port}") as client:
            responses = [
                await client.get("/c/shutdown", headers={"User-Agent": BROWSER}) for _ in range(120)
            ]
        assert [r.status_code for r in responses] == [302] * 120
        assert app.state.links.clicks.pending == 120
    finally:
        server.should_exit = True
        await task
    clicks, _, _ = await day_row(live, link["id"])
    assert clicks == 120


async def test_link_days_are_utc_dates(live, admin):
    link = await new_link(live, admin, slug="dates")
    recorder = live.app.state.links.clicks
    from datetime import UTC, datetime

    recorder.record(
        link["id"],
        ip="1.1.1.1",
        user_agent=BROWSER,
        now=datetime(2025, 12, 24, 23, 59, 59, tzinfo=UTC),
    )
    recorder.record(
        link["id"],
        ip="1.1.1.1",
        user_agent=BROWSER,
        now=datetime(2025, 12, 25, 0, 0, 0, tzinfo=UTC),
    )
    await recorder.flush()
    async with live.runtime.db.session() as session:
        days = (await session.scalars(select(LinkClickDay.day).order_by(LinkClickDay.day))).all()
    assert days == [date(2025, 12, 24), date(2025, 12, 25)]


async def test_the_click_buffer_does_not_need_a_login(live):
    _, token = await create_user(live, email="a@example.com", role="admin")
    link = await new_link(live, auth(token), slug="public")
    response = await live.client.get("/c/public")
    assert response.status_code == 302 and response.headers["location"] == link["wa_me_url"]
