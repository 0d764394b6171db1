"""The browser app: server-rendered pages (Jinja2), static files, security headers.

``install(app, settings)`` is the one call ``create_app`` makes.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from wadesk.config import Settings

STATIC = Path(__file__).with_name("static")
logger = structlog.get_logger(__name__)


def install(app: FastAPI, settings: Settings) -> None:
    from wadesk.automation.views import router as automation_router
    from wadesk.routing.views import router as routing_views_router
    from wadesk.teams.views import router as teams_views_router
    from wadesk.web.account_views import router as account_router
    from wadesk.web.admin_views import router as admin_router
    from wadesk.web.auth_views import router as auth_router
    from wadesk.web.i18n import LocaleMiddleware, install_jinja
    from wadesk.web.inbox_views import router as inbox_router
    from wadesk.web.links_views import router as links_router
    from wadesk.web.pages import PageError, PageRedirect, env, redirect, render
    from wadesk.web.security import SecurityHeadersMiddleware

    @app.exception_handler(PageRedirect)
    async def _redirect(_request: Request, exc: PageRedirect) -> Response:
        return redirect(exc.location)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return render(
            request,
            "error.html",
            {"title": exc.title, "message": exc.message, "status": exc.status},
            status=exc.status,
        )

    install_jinja(env)
    mount_vendor(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(inbox_router)
    for router in (auth_router, account_router, admin_router, links_router):
        app.include_router(router)
    app.include_router(automation_router)
    app.include_router(routing_views_router)  # routing: availability, live queue, settings
    app.include_router(teams_views_router)
    app.add_middleware(SecurityHeadersMiddleware, https=settings.https)
    app.add_middleware(LocaleMiddleware)


def node_modules() -> Path:
    """Where ``make assets`` (npm) put the browser libraries: the repository's node_modules, or
    ``WADESK_NODE_MODULES`` for an installed copy of wadesk."""
    configured = os.environ.get("WADESK_NODE_MODULES")
    return Path(configured) if configured else Path(__file__).resolve().parents[3] / "node_modules"


def mount_vendor(app: FastAPI) -> None:
    """``/static/vendor/htmx.min.js`` from node_modules/htmx.org; a clear error when missing."""
    dist = node_modules() / "htmx.org" / "dist"
    if (dist / "htmx.min.js").is_file():
        app.mount("/static/vendor", StaticFiles(directory=dist), name="vendor")
        return
    logger.error("htmx_missing", path=str(dist), fix="run `make assets` (npm install)")

    @app.get("/static/vendor/{name:path}", include_in_schema=False)
    async def _vendor_missing(name: str) -> Response:
        return PlainTextResponse(
            f"/* {name} is missing: {dist} does not exist. Run `make assets` (npm install). */",
            status_code=503,
            media_type="text/javascript",
        )
