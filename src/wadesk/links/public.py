"""The public side of links, served without login: ``/c/<slug>`` (302 to wa.me) and
``/c/<slug>/button.js`` (the floating website button).

The redirect is the hot path (thousands a second from one campaign), so it is answered by a
small ASGI middleware in front of the router: the slug is looked up in a per-process cache
(dropped on every ``link.changed`` event, and after ``WADESK_LINKS_CACHE_SECONDS`` at most for
changes made by other processes without Redis), the click is counted in memory
(links/clicks.py), and the answer goes out without touching the database. See
docs/decisions/0020-short-link-hot-path.md.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from wadesk.db import Database, utcnow
from wadesk.links.clicks import ClickRecorder
from wadesk.links.models import Link
from wadesk.links.present import link_status, link_target, short_url
from wadesk.links.rules import SLUG_MAX, SLUG_RE, WA_ME
from wadesk.links.snippets import button_script

if TYPE_CHECKING:
    from wadesk.runtime import Runtime

log = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Resolved:
    link_id: int
    location: bytes  # the wa.me URL, ASCII (percent-encoded)
    plain_location: bytes  # wa.me/<digits> without text: offered when a link has expired
    is_active: bool
    expires_at: datetime | None

    def state(self, now: datetime) -> str:
        if not self.is_active:
            return "inactive"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class LinkResolver:
    """slug -> what the short URL answers, cached per process (unknown slugs too)."""

    def __init__(self, db: Database, *, ttl: float) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: OrderedDict[str, tuple[float, Resolved | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[Resolved | None]] = {}

    async def get(self, slug: str) -> Resolved | None:
        hit = self._cache.get(slug)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        loading = self._loading.get(slug)
        if loading is not None:  # one query per slug, however many requests wait for it
            return await asyncio.shield(loading)
        future: asyncio.Future[Resolved | None] = asyncio.get_running_loop().create_future()
        self._loading[slug] = future
        try:
            resolved = await self._load(slug)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody warns about it
            raise
        finally:
            self._loading.pop(slug, None)
        future.set_result(resolved)
        if self._ttl > 0:
            self._cache[slug] = (time.monotonic(), resolved)
            self._cache.move_to_end(slug)
            while len(self._cache) > CACHE_MAX_ENTRIES:
                self._cache.popitem(last=False)
        return resolved

    async def _load(self, slug: str) -> Resolved | None:
        async with self._db.sessionmaker() as session:
            link = await session.scalar(select(Link).where(Link.slug == slug))
            resolved = None
            if link is not None:
                resolved = Resolved(
                    link_id=link.id,
                    location=link_target(link).encode("ascii"),
                    plain_location=(WA_ME + link.phone_e164.lstrip("+")).encode("ascii"),
                    is_active=link.is_active,
                    expires_at=link.expires_at,
                )
            await session.rollback()
        return resolved

    def invalidate(self, slugs: list[str] | None = None) -> None:
        if slugs is None:
            self._cache.clear()
            return
        for slug in slugs:
            self._cache.pop(slug, None)


class PublicLinks:
    """What the public routes of one process share: the slug cache and the click buffer."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.settings = settings
        self.resolver = LinkResolver(runtime.db, ttl=settings.links_cache_seconds)
        self.clicks = ClickRecorder(
            runtime.db,
            secret_key=settings.resolved_secret_key(),
            flush_seconds=settings.links_click_flush_seconds,
            retention_days=settings.links_visitor_retention_days,
        )
        runtime.listeners.append(self.on_events)

    def on_events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Committed events, this process's or (through Redis) another's."""
        for kind, payload in events:
            if kind == "link.changed":
                self.resolver.invalidate([str(s) for s in payload.get("slugs", [])])

    async def start(self) -> None:
        self.clicks.start()

    async def stop(self) -> None:
        """Graceful shutdown: every click counted so far is written before the database goes."""
        await self.clicks.stop()


# --- the redirect ----------------------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body{{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f0f2f5;color:#111b21}}
main{{max-width:26rem;margin:1rem;padding:2rem;background:#fff;border-radius:12px;
box-shadow:0 1px 3px rgba(0,0,0,.12);text-align:center}}
h1{{font-size:1.25rem;margin:0 0 .75rem}} p{{line-height:1.5;margin:0 0 1rem;color:#54656f}}
a.button{{display:inline-block;padding:.7rem 1.2rem;border-radius:999px;background:#25d366;
color:#fff;font-weight:600;text-decoration:none}}
</style></head>
<body><main><h1>{title}</h1><p>{text}</p>{action}</main></body></html>
"""


def page(title: str, text: str, action_url: str | None = None) -> bytes:
    action = ""
    if action_url:
        action = (
            f'<a class="button" href="{html.escape(action_url)}" rel="noopener">'
            "Write to us on WhatsApp</a>"
        )
    return PAGE.format(title=html.escape(title), text=html.escape(text), action=action).encode()


NOT_FOUND = page(
    "This chat link does not exist",
    "Check the address: it may have been typed or copied incompletely.",
)
INACTIVE = page(
    "This chat link is no longer active",
    "The business that shared it has turned it off.",
)
UNAVAILABLE = page("Please try again", "This chat link cannot be opened right now.")


def _expired(plain_location: bytes) -> bytes:
    return page(
        "This chat link has expired",
        "The offer or campaign it was made for has ended. You can still write to the business.",
        plain_location.decode("ascii"),
    )


class ShortLinkMiddleware:
    """Answers ``GET``/``HEAD /c/<slug>`` itself; everything else goes on to the app."""

    def __init__(self, app: ASGIApp, links: PublicLinks) -> None:
        self.app = app
        self.links = links

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        slug = path[3:-1] if path.endswith("/") else path[3:]  # "/c/promo/" too
        if (
            scope["type"] != "http"
            or not path.startswith("/c/")
            or scope["method"] not in ("GET", "HEAD")
            or "/" in slug
        ):
            await self.app(scope, receive, send)
            return
        await self.redirect(scope, send, slug.lower())

    async def redirect(self, scope: Scope, send: Send, slug: str) -> None:
        head = scope["method"] == "HEAD"
        if not slug or len(slug) > SLUG_MAX or not SLUG_RE.match(slug):
            await _html(send, 404, NOT_FOUND, head)
            return
        try:
            resolved = await self.links.resolver.get(slug)
        except (SQLAlchemyError, OSError):
            log.warning("links.resolve_failed", exc_info=True)
            await _html(send, 503, UNAVAILABLE, head, retry_after=True)
            return
        if resolved is None:
            await _html(send, 404, NOT_FOUND, head)
            return
        now = utcnow()
        state = resolved.state(now)
        if state == "inactive":
            await _html(send, 410, INACTIVE, head)
            return
        if state == "expired":
            await _html(send, 410, _expired(resolved.plain_location), head)
            return
        if not head:
            client = scope.get("client")
            user_agent = b""
            for name, value in scope["headers"]:
                if name == b"user-agent":
                    user_agent = value
                    break
            self.links.clicks.record(
                resolved.link_id,
                ip=client[0] if client else "",
                user_agent=user_agent.decode("latin-1"),
                now=now,
            )
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [
                    (b"location", resolved.location),
                    (b"cache-control", b"no-store"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-robots-tag", b"noindex"),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


async def _html(
    send: Send, status: int, body: bytes, head: bool, *, retry_after: bool = False
) -> None:
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"x-robots-tag", b"noindex"),
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after:
        headers.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


# --- the website button ----------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


@router.get("/c/{slug}/button.js")
async def button_js(request: Request, slug: str) -> Response:
    """The floating button's script. A link that is unknown or not active gives a script that
    only says so in the browser's console: a site must never break because a link ended."""
    links: PublicLinks = request.app.state.links
    db: Database = request.app.state.runtime.db
    link = None
    if SLUG_RE.match(slug.lower()) and len(slug) <= SLUG_MAX:
        async with db.sessionmaker() as session:
            link = await session.scalar(select(Link).where(Link.slug == slug.lower()))
            if link is not None:
                session.expunge(link)  # read only: keep its loaded values after the session
            await session.rollback()
    headers = {
        "Cache-Control": "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
        "Access-Control-Allow-Origin": "*",
    }
    if link is None or link_status(link) != "active":
        why = "does not exist" if link is None else f"is {link_status(link)}"
        body = f"console.warn({orjson.dumps(f'wadesk: chat link {slug!r} {why}').decode()});\n"
        return Response(body, media_type="text/javascript", headers=headers)
    base = links.settings.resolved_links_base_url
    return Response(
        button_script(link, short_url(base, link.slug)),
        media_type="text/javascript",
        headers=headers,
    )


def install_public_links(app: FastAPI, runtime: Runtime) -> PublicLinks:
    """Mount the public routes; the caller starts and stops the returned service."""
    links = PublicLinks(runtime)
    app.state.links = links
    app.add_middleware(ShortLinkMiddleware, links=links)
    app.include_router(router)
    return links
