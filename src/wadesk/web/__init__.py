"""The browser app: server-rendered pages (Jinja2), static files, security headers.

``install(app, settings)`` is the one call ``create_app`` makes.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from wadesk.config import Settings

STATIC = Path(__file__).with_name("static")


def install(app: FastAPI, settings: Settings) -> None:
    from wadesk.web.account_views import router as account_router
    from wadesk.web.admin_views import router as admin_router
    from wadesk.web.auth_views import router as auth_router
    from wadesk.web.pages import PageError, PageRedirect, redirect, render
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

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (auth_router, account_router, admin_router):
        app.include_router(router)
    app.add_middleware(SecurityHeadersMiddleware, https=settings.https)
