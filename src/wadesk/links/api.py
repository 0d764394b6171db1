"""/api/v1/links: the link builder's API (admins and supervisors)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import Principal
from wadesk.config import Settings
from wadesk.db import utcnow
from wadesk.deps import Reader, RuntimeDep, SessionDep, Writer
from wadesk.errors import ApiError, error_body
from wadesk.links.actions import (
    LinkConflict,
    LinkRateLimited,
    do_create_link,
    do_update_link,
    validate_draft,
)
from wadesk.links.models import Link
from wadesk.links.present import link_out, number_out, short_url
from wadesk.links.qr import qr_png, qr_svg
from wadesk.links.queries import (
    campaigns,
    campaigns_csv,
    get_link,
    inbox_names,
    link_stats,
    link_stats_csv,
    links_csv,
    list_links,
    number_options,
)
from wadesk.links.rules import LinkInvalid
from wadesk.links.schemas import (
    CampaignStats,
    LinkCreate,
    LinkOut,
    LinkPreviewOut,
    LinkStats,
    LinkUpdate,
    NumberOption,
    Snippets,
    WhatsAppPreview,
)
from wadesk.links.snippets import (
    email_signature_html,
    email_signature_text,
    html_button,
    script_tag,
    social_texts,
)
from wadesk.pagination import Page, decode_id_cursor, encode_cursor

router = APIRouter(prefix="/links", tags=["links"])
MANAGERS = ("admin", "supervisor")
MAX_RANGE_DAYS = 366


def _manager(principal: Principal) -> Principal:
    if principal.role not in MANAGERS:
        raise ApiError(403, "forbidden", "Links are managed by admins and supervisors.")
    return principal


async def _reading_manager(principal: Reader) -> Principal:
    return _manager(principal)


async def _writing_manager(principal: Writer) -> Principal:
    return _manager(principal)


LinkReader = Annotated[Principal, Depends(_reading_manager)]
LinkWriter = Annotated[Principal, Depends(_writing_manager)]
Since = Annotated[date | None, Query(description="First UTC day (default: 29 days before until)")]
Until = Annotated[date | None, Query(description="Last UTC day (default: today)")]


def _range(since: date | None, until: date | None) -> tuple[date, date]:
    end = until or utcnow().date()
    start = since or end - timedelta(days=29)
    if start > end:
        raise ApiError(422, "invalid_range", "since is after until.")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise ApiError(422, "invalid_range", f"At most {MAX_RANGE_DAYS} days at a time.")
    return start, end


def _invalid(exc: LinkInvalid) -> ApiError:
    return ApiError(422, exc.code, str(exc), field=exc.field)


async def _outs(session: AsyncSession, settings: Settings, links: list[Link]) -> list[LinkOut]:
    names = await inbox_names(session, (link.inbox_id for link in links))
    base = settings.resolved_links_base_url
    return [
        link_out(
            link,
            base_url=base,
            inbox_name=names.get(link.inbox_id) if link.inbox_id is not None else None,
        )
        for link in links
    ]


async def _link_or_404(session: AsyncSession, principal: Principal, link_id: int) -> Link:
    link = await get_link(session, principal, link_id)
    if link is None:
        raise ApiError(404, "not_found", "No such link.")
    return link


def _check_inbox(principal: Principal, inbox_id: int | None) -> None:
    if inbox_id is not None and not principal.can_see_inbox(inbox_id):
        raise ApiError(422, "unknown_inbox", f"No inbox with id {inbox_id}.", field="inbox_id")


@router.get("", response_model=Page[LinkOut])
async def list_(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: LinkReader,
    campaign: Annotated[str | None, Query(max_length=100)] = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Name, slug, campaign, ref")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[LinkOut]:
    after = decode_id_cursor(cursor) if cursor else None
    links = await list_links(
        session,
        principal,
        campaign=campaign,
        active=active,
        q=q,
        after_id=after,
        limit=limit + 1,
    )
    more = len(links) > limit
    links = links[:limit]
    return Page(
        items=await _outs(session, runtime.settings, links),
        next_cursor=encode_cursor(links[-1].id) if more and links else None,
    )


@router.post(
    "",
    response_model=LinkOut,
    status_code=201,
    responses={409: {"description": "Slug, ref or ad taken"}, 429: {"description": "Too many"}},
)
async def create(
    session: SessionDep, runtime: RuntimeDep, principal: LinkWriter, body: LinkCreate
) -> Any:
    _check_inbox(principal, body.inbox_id)
    try:
        link = await do_create_link(
            session,
            actor=principal.actor,
            values=body.model_dump(exclude_unset=True),
            per_hour=runtime.settings.links_create_per_hour,
        )
    except LinkInvalid as exc:
        raise _invalid(exc) from exc
    except LinkConflict as exc:
        raise ApiError(409, "link_conflict", str(exc), field=exc.field) from exc
    except LinkRateLimited as exc:
        return JSONResponse(
            error_body("rate_limited", str(exc), retry_after=exc.retry_after),
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    return (await _outs(session, runtime.settings, [link]))[0]


@router.post("/preview", response_model=LinkPreviewOut)
async def preview(session: SessionDep, principal: LinkReader, body: LinkCreate) -> LinkPreviewOut:
    """Validate a link and show its wa.me URL and WhatsApp preview, without saving it."""
    _check_inbox(principal, body.inbox_id)
    try:
        draft = await validate_draft(session, body.model_dump(exclude_unset=True))
        ref = draft.ref_code or "REF123"
        url = draft.url(ref)
    except LinkInvalid as exc:
        raise _invalid(exc) from exc
    return LinkPreviewOut(
        phone=number_out(draft.number.e164),
        text=draft.text(ref),
        wa_me_url=url,
        url_length=len(url),
        preview=WhatsAppPreview(
            business_name=draft.inbox.name if draft.inbox else None,
            number=draft.number.international,
            text=draft.text(ref),
            cta_label=draft.cta_label,
        ),
    )


@router.get("/numbers", response_model=Page[NumberOption])
async def numbers(session: SessionDep, principal: LinkReader) -> Page[NumberOption]:
    """The inboxes' business numbers, as the builder offers them."""
    options = []
    for inbox in await number_options(session, principal):
        try:
            phone = number_out(inbox.display_phone_number or "")
        except LinkInvalid:
            continue
        options.append(NumberOption(inbox_id=inbox.id, inbox_name=inbox.name, phone=phone))
    return Page(items=options)


@router.get("/campaigns", response_model=list[CampaignStats])
async def campaign_list(
    session: SessionDep, principal: LinkReader, since: Since = None, until: Until = None
) -> list[CampaignStats]:
    """Figures per campaign (totals); links without a campaign are grouped as null."""
    start, end = _range(since, until)
    return await campaigns(session, principal, start, end)


@router.get("/campaigns.csv", response_class=Response)
async def campaign_list_csv(
    session: SessionDep, principal: LinkReader, since: Since = None, until: Until = None
) -> Response:
    start, end = _range(since, until)
    stats = await campaigns(session, principal, start, end)
    return _csv(campaigns_csv(stats), f"campaigns-{start}-{end}.csv")


@router.get("/campaigns/detail", response_model=CampaignStats)
async def campaign_detail(
    session: SessionDep,
    principal: LinkReader,
    campaign: Annotated[str, Query(min_length=1, max_length=100)],
    since: Since = None,
    until: Until = None,
) -> CampaignStats:
    """One campaign's figures with its series by day."""
    start, end = _range(since, until)
    found = await campaigns(session, principal, start, end, campaign=campaign, with_series=True)
    if not found:
        raise ApiError(404, "not_found", "No link has this campaign.")
    return found[0]


@router.get("/stats.csv", response_class=Response)
async def all_links_csv(
    session: SessionDep,
    principal: LinkReader,
    campaign: Annotated[str | None, Query(max_length=100)] = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    """Totals of every link (of a campaign), one row per link."""
    start, end = _range(since, until)
    links = await list_links(session, principal, campaign=campaign, limit=10_000)
    body = await links_csv(session, principal, links, start, end)
    return _csv(body, f"links-{start}-{end}.csv")


@router.get("/{link_id}", response_model=LinkOut)
async def get(
    session: SessionDep, runtime: RuntimeDep, principal: LinkReader, link_id: int
) -> LinkOut:
    link = await _link_or_404(session, principal, link_id)
    return (await _outs(session, runtime.settings, [link]))[0]


@router.patch("/{link_id}", response_model=LinkOut)
async def update(
    session: SessionDep, runtime: RuntimeDep, principal: LinkWriter, link_id: int, body: LinkUpdate
) -> LinkOut:
    link = await _link_or_404(session, principal, link_id)
    values = body.model_dump(exclude_unset=True)
    _check_inbox(principal, values.get("inbox_id"))
    try:
        await do_update_link(session, actor=principal.actor, link=link, values=values)
    except LinkInvalid as exc:
        raise _invalid(exc) from exc
    except LinkConflict as exc:
        raise ApiError(409, "link_conflict", str(exc), field=exc.field) from exc
    return (await _outs(session, runtime.settings, [link]))[0]


@router.post("/{link_id}/deactivate", response_model=LinkOut)
async def deactivate(
    session: SessionDep, runtime: RuntimeDep, principal: LinkWriter, link_id: int
) -> LinkOut:
    """Turn the link off: its short URL answers 410 "no longer active" at once."""
    link = await _link_or_404(session, principal, link_id)
    await do_update_link(session, actor=principal.actor, link=link, values={"is_active": False})
    return (await _outs(session, runtime.settings, [link]))[0]


@router.post("/{link_id}/activate", response_model=LinkOut)
async def activate(
    session: SessionDep, runtime: RuntimeDep, principal: LinkWriter, link_id: int
) -> LinkOut:
    link = await _link_or_404(session, principal, link_id)
    await do_update_link(session, actor=principal.actor, link=link, values={"is_active": True})
    return (await _outs(session, runtime.settings, [link]))[0]


Ecc = Annotated[
    Literal["L", "M", "Q", "H"],
    Query(description="Error correction: L 7%, M 15%, Q 25%, H 30% (logo-safe)"),
]
Caption = Annotated[str | None, Query(max_length=80, description="Text under the code")]
Scale = Annotated[int, Query(ge=1, le=40, description="Pixels per module")]
Border = Annotated[int, Query(ge=0, le=20, description="Quiet zone, in modules")]
Colour = Annotated[str, Query(pattern=r"^#[0-9a-fA-F]{6}$")]
QR_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "private, max-age=300",
}


def _qr_response(body: str | bytes, slug: str, extension: str, media_type: str) -> Response:
    headers = {**QR_HEADERS, "Content-Disposition": f'inline; filename="{slug}.{extension}"'}
    return Response(body, media_type=media_type, headers=headers)


@router.get(
    "/{link_id}/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def qr_code_svg(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: LinkReader,
    link_id: int,
    ecc: Ecc = "M",
    caption: Caption = None,
    scale: Scale = 10,
    border: Border = 4,
    dark: Colour = "#000000",
    light: Colour = "#ffffff",
) -> Response:
    """The short URL as a QR code (SVG)."""
    link = await _link_or_404(session, principal, link_id)
    url = short_url(runtime.settings.resolved_links_base_url, link.slug)
    body = qr_svg(url, ecc=ecc, caption=caption, scale=scale, border=border, dark=dark, light=light)
    return _qr_response(body, link.slug, "svg", "image/svg+xml")


@router.get(
    "/{link_id}/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def qr_code_png(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: LinkReader,
    link_id: int,
    ecc: Ecc = "M",
    caption: Caption = None,
    scale: Scale = 10,
    border: Border = 4,
    dark: Colour = "#000000",
    light: Colour = "#ffffff",
) -> Response:
    """The short URL as a QR code (PNG)."""
    link = await _link_or_404(session, principal, link_id)
    url = short_url(runtime.settings.resolved_links_base_url, link.slug)
    body = qr_png(url, ecc=ecc, caption=caption, scale=scale, border=border, dark=dark, light=light)
    return _qr_response(body, link.slug, "png", "image/png")


@router.get("/{link_id}/snippets", response_model=Snippets)
async def snippets(
    session: SessionDep, runtime: RuntimeDep, principal: LinkReader, link_id: int
) -> Snippets:
    """Copy-ready: website button (one script tag), HTML button, email signature, social."""
    link = await _link_or_404(session, principal, link_id)
    base = runtime.settings.resolved_links_base_url
    short = short_url(base, link.slug)
    out = (await _outs(session, runtime.settings, [link]))[0]
    return Snippets(
        short_url=short,
        wa_me_url=out.wa_me_url,
        website_button=script_tag(base, link.slug),
        html_button=html_button(link, short),
        email_signature_html=email_signature_html(link, short),
        email_signature_text=email_signature_text(link, short),
        social=social_texts(link, short),
    )


@router.get("/{link_id}/stats", response_model=LinkStats)
async def stats(
    session: SessionDep,
    principal: LinkReader,
    link_id: int,
    since: Since = None,
    until: Until = None,
) -> LinkStats:
    """Clicks, unique visitors, conversations started and resolved, time to first response,
    and the series by UTC day."""
    link = await _link_or_404(session, principal, link_id)
    start, end = _range(since, until)
    return await link_stats(session, principal, link, start, end)


@router.get("/{link_id}/stats.csv", response_class=Response)
async def stats_csv(
    session: SessionDep,
    principal: LinkReader,
    link_id: int,
    since: Since = None,
    until: Until = None,
) -> Response:
    link = await _link_or_404(session, principal, link_id)
    start, end = _range(since, until)
    figures = await link_stats(session, principal, link, start, end)
    return _csv(link_stats_csv(figures), f"link-{link.slug}-{start}-{end}.csv")


def _csv(body: str, filename: str) -> Response:
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
