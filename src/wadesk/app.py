"""create_app(): wires routers, middleware and the lifespan. No logic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from wadesk import __version__
from wadesk.accounts.api import router as accounts_router
from wadesk.audit.api import router as audit_router
from wadesk.automation.api import router as automation_router
from wadesk.channels.whatsapp.fastpath import WhatsAppDeliveries, delivery
from wadesk.channels.whatsapp.webhook import router as whatsapp_webhook_router
from wadesk.config import Settings, get_settings
from wadesk.contacts.api import router as contacts_router
from wadesk.conversations.api import router as conversations_router
from wadesk.errors import install_error_handlers
from wadesk.health import router as health_router
from wadesk.inboxes.api import router as inboxes_router
from wadesk.ingest.api import router as ingest_router
from wadesk.links.api import router as links_router
from wadesk.links.public import install_public_links
from wadesk.logging import configure_logging
from wadesk.media.api import router as uploads_router
from wadesk.realtime.api import router as events_router
from wadesk.routing.api import router as routing_router
from wadesk.runtime import Runtime, freeze_startup_objects
from wadesk.teams.api import router as teams_router
from wadesk.web import install as install_web

API_DESCRIPTION = """
The wadesk REST API. Authenticate with `Authorization: Bearer <token>` (create one with
`wadesk token create --email you@example.com`). Lists are paginated with cursors:
`{"items": [...], "next_cursor": "..."}`; pass `cursor` to get the next page.
Errors are `{"error": {"code": "...", "message": "..."}}` with a 4xx status.
Writes that send messages accept an `Idempotency-Key` header: the same key never sends twice.
"""


class WadeskApp(FastAPI):
    """Meta's deliveries go to the fast path before anything of the framework runs (its
    middleware stack, and FastAPI's telemetry check on every request): ADR 0003."""

    deliveries: WhatsAppDeliveries

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_delivery, key = delivery(scope)
        if is_delivery:
            await self.deliveries.answer(scope, receive, send, key)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, run_workers: bool | None = None) -> WadeskApp:
    settings = settings or get_settings()
    configure_logging(settings)
    runtime = Runtime(
        settings,
        run_workers=settings.run_worker_in_server if run_workers is None else run_workers,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await links.start()
        if settings.simulator_enabled:
            from wadesk.demo import start_embedded_simulator

            await start_embedded_simulator(app, runtime)
        if settings.gc_freeze:
            freeze_startup_objects()
        try:
            yield
        finally:
            await links.stop()  # the clicks counted in memory are written first
            await runtime.stop()
            if settings.simulator_enabled:
                await app.state.simulator.aclose()

    app = WadeskApp(
        title="wadesk",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.deliveries = WhatsAppDeliveries(runtime)
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(whatsapp_webhook_router)
    for router in (
        contacts_router,
        conversations_router,
        inboxes_router,
        ingest_router,
        links_router,
        uploads_router,
    ):
        app.include_router(router, prefix="/api/v1")
    for router in (accounts_router, audit_router):
        app.include_router(router, prefix="/api/v1")
    app.include_router(automation_router, prefix="/api/v1")
    if settings.simulator_enabled:  # the order-status demo's sample orders API
        from wadesk.automation.demo import router as demo_orders_router

        app.include_router(demo_orders_router)
    app.include_router(events_router, prefix="/api/v1")
    app.include_router(routing_router, prefix="/api/v1")
    app.include_router(teams_router, prefix="/api/v1")
    install_web(app, settings)
    # Last: its middleware is then the outermost, so a short link skips the others.
    links = install_public_links(app, runtime)
    if settings.simulator_enabled:
        from wadesk.demo import mount_embedded_simulator

        mount_embedded_simulator(app, runtime)
    return app
