"""`wadesk links`: create, list and export QR codes of click-to-chat links."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from wadesk.audit.actions import Actor
from wadesk.config import get_settings
from wadesk.db import Database
from wadesk.links.actions import LinkConflict, do_create_link
from wadesk.links.models import Link
from wadesk.links.present import link_out, link_status, short_url
from wadesk.links.qr import qr_png, qr_svg
from wadesk.links.queries import get_link_by_slug
from wadesk.links.rules import LinkInvalid

links_app = typer.Typer(help="Click-to-chat links (wa.me short links).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
CLI_ACTOR = Actor.system("cli")
LEVELS: dict[str, Literal["L", "M", "Q", "H"]] = {"L": "L", "M": "M", "Q": "Q", "H": "H"}


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


@links_app.command("create")
def create(
    phone: Annotated[
        str | None, typer.Option(help="Business number, e.g. '+55 11 98765-4321'")
    ] = None,
    inbox_id: Annotated[int | None, typer.Option(help="Use this inbox's number")] = None,
    message: Annotated[str, typer.Option(help="Prefilled text (any language)")] = "",
    slug: Annotated[str | None, typer.Option(help="Brand keyword; generated if left out")] = None,
    ref: Annotated[str | None, typer.Option(help="Reference code; generated if left out")] = None,
    cta: Annotated[str | None, typer.Option(help="Call to action")] = None,
    campaign: Annotated[str | None, typer.Option()] = None,
    source: Annotated[str | None, typer.Option(help="Where it is shown: 'email signature'")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    expires: Annotated[
        datetime | None, typer.Option(help="Expiry, ISO 8601 with a time zone")
    ] = None,
    ad_id: Annotated[str | None, typer.Option(help="Click-to-WhatsApp ad id")] = None,
) -> None:
    """Create a link; prints it as JSON (short_url, wa_me_url, ref_code ...)."""
    values = {
        key: value
        for key, value in {
            "phone": phone,
            "inbox_id": inbox_id,
            "message": message,
            "slug": slug,
            "ref_code": ref,
            "cta_label": cta,
            "campaign": campaign,
            "source": source,
            "name": name,
            "expires_at": expires,
            "ad_source_id": ad_id,
        }.items()
        if value is not None
    }
    if expires is not None and expires.tzinfo is None:
        raise _fail("--expires needs a time zone, e.g. 2026-01-06T03:00:00+00:00")
    settings = get_settings()

    async def work() -> str:
        db = Database(settings)
        try:
            async with db.session() as session:
                link = await do_create_link(
                    session,
                    actor=CLI_ACTOR,
                    values=values,
                    per_hour=settings.links_create_per_hour,
                )
                out = link_out(link, base_url=settings.resolved_links_base_url, inbox_name=None)
                return out.model_dump_json()
        finally:
            await db.dispose()

    try:
        console.print_json(asyncio.run(work()))
    except (LinkInvalid, LinkConflict) as exc:
        raise _fail(str(exc)) from exc


@links_app.command("list")
def list_(
    campaign: Annotated[str | None, typer.Option()] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """List links (newest first)."""
    from sqlalchemy import select

    settings = get_settings()

    async def work() -> list[Link]:
        db = Database(settings)
        try:
            async with db.session() as session:
                query = select(Link).order_by(Link.id.desc())
                if campaign is not None:
                    query = query.where(Link.campaign == campaign)
                return list((await session.scalars(query)).all())
        finally:
            await db.dispose()

    links = asyncio.run(work())
    base = settings.resolved_links_base_url
    if json_output:
        for link in links:
            print(link_out(link, base_url=base, inbox_name=None).model_dump_json())
        return
    table = Table("id", "slug", "status", "number", "ref", "campaign", "short URL")
    for link in links:
        table.add_row(
            str(link.id),
            link.slug,
            link_status(link),
            link.phone_e164,
            link.ref_code,
            link.campaign or "",
            short_url(base, link.slug),
        )
    console.print(table)


@links_app.command("qr")
def qr(
    slug: Annotated[str, typer.Argument(help="The link's slug")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (.svg or .png)")],
    ecc: Annotated[str, typer.Option(help="L, M, Q or H (logo-safe)")] = "M",
    caption: Annotated[str | None, typer.Option(help="Text under the code")] = None,
    scale: Annotated[int, typer.Option(min=1, max=40)] = 10,
) -> None:
    """Write the QR code of a link's short URL to a file (format from the extension)."""
    level = LEVELS.get(ecc.upper())
    if level is None:
        raise _fail("--ecc is one of L, M, Q, H")
    kind = out.suffix.lower()
    if kind not in (".svg", ".png"):
        raise _fail("--out ends with .svg or .png")
    settings = get_settings()

    async def work() -> Link | None:
        db = Database(settings)
        try:
            async with db.session() as session:
                return await get_link_by_slug(session, slug.strip().lower())
        finally:
            await db.dispose()

    link = asyncio.run(work())
    if link is None:
        raise _fail(f"no link with slug {slug!r}")
    url = short_url(settings.resolved_links_base_url, link.slug)
    make = qr_svg if kind == ".svg" else qr_png
    out.write_bytes(make(url, ecc=level, caption=caption, scale=scale))
    console.print(json.dumps({"file": str(out), "url": url, "ecc": level}))
