"""The link builder's pages (admins and supervisors): list, build with a live preview, a link's
QR codes, snippets and figures. The forms go through the same schema and actions as the API
(``links.schemas.LinkCreate``, ``links.actions``); the live preview calls the API's preview."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import SessionAuth
from wadesk.config import Settings
from wadesk.db import utcnow
from wadesk.deps import RuntimeDep, SessionDep
from wadesk.links.actions import (
    LinkConflict,
    LinkRateLimited,
    do_create_link,
    do_update_link,
    validate_draft,
)
from wadesk.links.models import Link
from wadesk.links.present import link_out, number_out, short_url
from wadesk.links.queries import campaigns, get_link, inbox_names, link_stats, list_links
from wadesk.links.queries import number_options as inbox_numbers
from wadesk.links.rules import LinkInvalid
from wadesk.links.schemas import LinkCreate, LinkOut, LinkStats, LinkUpdate
from wadesk.links.snippets import (
    email_signature_html,
    email_signature_text,
    html_button,
    script_tag,
    social_texts,
)
from wadesk.web.pages import PageError, redirect, render, signed_in

router = APIRouter(include_in_schema=False)
MANAGERS = ("admin", "supervisor")
LIST_LIMIT = 200
# Form fields that map one to one onto LinkCreate; the rest are built below.
TEXT_FIELDS = ("name", "phone", "region", "message", "cta_label", "campaign", "source")
OPTIONAL_FIELDS = ("slug", "ref_code", "ref_label", "ad_source_id")


async def _manager(auth: Annotated[SessionAuth, signed_in()]) -> SessionAuth:
    if auth.principal.role not in MANAGERS:
        raise PageError(
            403, "Not allowed", "Click-to-chat links are managed by admins and supervisors."
        )
    return auth


Manager = Annotated[SessionAuth, Depends(_manager)]


def _link_out(settings: Settings, link: Link, names: dict[int, str]) -> LinkOut:
    return link_out(
        link,
        base_url=settings.resolved_links_base_url,
        inbox_name=names.get(link.inbox_id) if link.inbox_id is not None else None,
    )


async def _link_or_404(session: AsyncSession, auth: SessionAuth, link_id: int) -> Link:
    link = await get_link(session, auth.principal, link_id)
    if link is None:
        raise PageError(404, "Not found", "No such link.")
    return link


async def _numbers(session: AsyncSession, auth: SessionAuth) -> list[dict[str, Any]]:
    options = []
    for inbox in await inbox_numbers(session, auth.principal):
        try:
            phone = number_out(inbox.display_phone_number or "")
        except LinkInvalid:
            continue
        options.append({"inbox_id": inbox.id, "name": inbox.name, "phone": phone.international})
    return options


def _values_from_form(form: dict[str, str], *, editing: bool) -> dict[str, Any]:
    """The form as LinkCreate/LinkUpdate values (empty optional fields: left out, or cleared
    when editing)."""
    values: dict[str, Any] = {}
    for field in TEXT_FIELDS:
        value = form.get(field, "")
        if value.strip():
            values[field] = value
        elif editing and field in ("name", "campaign", "source", "cta_label"):
            values[field] = None
    if not values.get("message"):
        values["message"] = ""
    inbox = form.get("inbox_id", "").strip()
    if inbox:
        if not inbox.isdigit():
            raise LinkInvalid("inbox_id", "invalid_inbox", "Choose one of the listed numbers.")
        values["inbox_id"] = int(inbox)
        values.pop("phone", None)  # the inbox's own number
    elif editing:
        values["inbox_id"] = None
    for field in OPTIONAL_FIELDS:
        value = form.get(field, "").strip()
        if value:
            values[field] = value
        elif editing and field == "ad_source_id":
            values[field] = None
    values["include_ref"] = form.get("include_ref") == "on"
    translations = _translations(form.get("cta_translations", ""))
    if translations or editing:
        values["cta_translations"] = translations
    expires = form.get("expires_on", "").strip()
    if expires:
        try:
            day = date.fromisoformat(expires)
        except ValueError as exc:
            raise LinkInvalid("expires_at", "invalid_date", "Expiry: use a date.") from exc
        values["expires_at"] = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    elif editing:
        values["expires_at"] = None
    widget = {
        "text": form.get("widget_text", "").strip() or None,
        "color": form.get("widget_color", "#25D366") or "#25D366",
        "position": form.get("widget_position", "bottom-right") or "bottom-right",
    }
    values["widget"] = widget
    return values


def _translations(text: str) -> dict[str, str]:
    """``pt = Fale conosco`` lines: the call to action in the visitor's language."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        language, sep, label = line.partition("=")
        if not sep or not language.strip() or not label.strip():
            raise LinkInvalid(
                "cta_translations",
                "invalid_translation",
                f"Translations, line {number}: write it as language = text (pt = Fale conosco).",
            )
        found[language.strip()] = label.strip()
    return found


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))


async def _form_page(
    request: Request,
    session: AsyncSession,
    auth: SessionAuth,
    *,
    form: dict[str, str],
    link: Link | None = None,
    error: str | None = None,
    error_field: str | None = None,
    preview: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "links/form.html",
        {
            "form": form,
            "link": link,
            "numbers": await _numbers(session, auth),
            "error": error,
            "error_field": error_field,
            "preview": preview,
        },
        auth=auth,
        status=status,
    )


async def _preview(
    session: AsyncSession, values: dict[str, Any], link: Link | None
) -> dict[str, Any]:
    draft = await validate_draft(session, values, link)
    ref = draft.ref_code or (link.ref_code if link else "REF123")
    url = draft.url(ref)
    return {
        "business_name": draft.inbox.name if draft.inbox else None,
        "number": draft.number.international,
        "text": draft.text(ref),
        "cta_label": draft.cta_label,
        "wa_me_url": url,
        "url_length": len(url),
    }


def _form_of(link: Link) -> dict[str, str]:
    widget = link.widget or {}
    return {
        "name": link.name,
        "inbox_id": str(link.inbox_id or ""),
        "phone": "" if link.inbox_id else link.phone_e164,
        "message": link.message,
        "cta_label": link.cta_label,
        "cta_translations": "\n".join(f"{k} = {v}" for k, v in link.cta_translations.items()),
        "campaign": link.campaign or "",
        "source": link.source or "",
        "slug": link.slug,
        "ref_code": link.ref_code,
        "ref_label": link.ref_label,
        "include_ref": "on" if link.include_ref else "",
        "ad_source_id": link.ad_source_id or "",
        "expires_on": (link.expires_at - timedelta(seconds=1)).date().isoformat()
        if link.expires_at
        else "",
        "widget_text": str(widget.get("text") or ""),
        "widget_color": str(widget.get("color") or "#25D366"),
        "widget_position": str(widget.get("position") or "bottom-right"),
    }


async def _posted(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


# ------------------------------------------------------------------ list


@router.get("/links")
async def links_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Manager,
    campaign: str | None = None,
    q: str | None = None,
) -> Response:
    campaign = (campaign or "").strip()[:100] or None
    q = (q or "").strip()[:200] or None
    links = await list_links(session, auth.principal, campaign=campaign, q=q, limit=LIST_LIMIT)
    names = await inbox_names(session, (link.inbox_id for link in links))
    until = utcnow().date()
    since = until - timedelta(days=29)
    by_campaign = await campaigns(session, auth.principal, since, until)
    return render(
        request,
        "links/list.html",
        {
            "links": [_link_out(runtime.settings, link, names) for link in links],
            "campaigns": by_campaign,
            "campaign": campaign,
            "q": q,
            "since": since,
            "until": until,
            "truncated": len(links) >= LIST_LIMIT,
        },
        auth=auth,
    )


# ------------------------------------------------------------------ build


@router.get("/links/new")
async def new_link_page(request: Request, session: SessionDep, auth: Manager) -> Response:
    numbers = await _numbers(session, auth)
    form = {
        "include_ref": "on",
        "inbox_id": str(numbers[0]["inbox_id"]) if numbers else "",
        "widget_color": "#25D366",
        "widget_position": "bottom-right",
    }
    return await _form_page(request, session, auth, form=form)


@router.post("/links/new")
async def create_link(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: Manager
) -> Response:
    form = await _posted(request)
    try:
        values = LinkCreate.model_validate(_values_from_form(form, editing=False)).model_dump(
            exclude_unset=True
        )
        if values.get("inbox_id") is not None and not auth.principal.can_see_inbox(
            values["inbox_id"]
        ):
            raise LinkInvalid("inbox_id", "unknown_inbox", "Choose one of the listed numbers.")
        if form.get("action") == "preview":
            preview = await _preview(session, values, None)
            return await _form_page(request, session, auth, form=form, preview=preview)
        link = await do_create_link(
            session,
            actor=auth.principal.actor,
            values=values,
            per_hour=runtime.settings.links_create_per_hour,
        )
    except ValidationError as exc:
        return await _form_page(
            request, session, auth, form=form, error=_validation_message(exc), status=422
        )
    except LinkInvalid as exc:
        return await _form_page(
            request, session, auth, form=form, error=str(exc), error_field=exc.field, status=422
        )
    except LinkConflict as exc:
        return await _form_page(
            request, session, auth, form=form, error=str(exc), error_field=exc.field, status=409
        )
    except LinkRateLimited as exc:
        return await _form_page(request, session, auth, form=form, error=str(exc), status=429)
    return redirect(f"/links/{link.id}?notice=link_created")


# ------------------------------------------------------------------ one link


@router.get("/links/{link_id}")
async def link_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Manager,
    link_id: int,
    days: int = 30,
) -> Response:
    link = await _link_or_404(session, auth, link_id)
    days = min(max(days, 7), 366)
    until = utcnow().date()
    since = until - timedelta(days=days - 1)
    names = await inbox_names(session, [link.inbox_id])
    out = _link_out(runtime.settings, link, names)
    short = short_url(runtime.settings.resolved_links_base_url, link.slug)
    stats = await link_stats(session, auth.principal, link, since, until)
    return render(
        request,
        "links/detail.html",
        {
            "link": out,
            "stats": stats,
            "chart": chart(stats),
            "days": days,
            "snippets": {
                "website_button": script_tag(runtime.settings.resolved_links_base_url, link.slug),
                "html_button": html_button(link, short),
                "email_signature_html": email_signature_html(link, short),
                "email_signature_text": email_signature_text(link, short),
                "social": social_texts(link, short),
            },
        },
        auth=auth,
    )


@router.get("/links/{link_id}/edit")
async def edit_link_page(
    request: Request, session: SessionDep, auth: Manager, link_id: int
) -> Response:
    link = await _link_or_404(session, auth, link_id)
    return await _form_page(request, session, auth, form=_form_of(link), link=link)


@router.post("/links/{link_id}/edit")
async def edit_link(request: Request, session: SessionDep, auth: Manager, link_id: int) -> Response:
    link = await _link_or_404(session, auth, link_id)
    form = await _posted(request)
    try:
        values = LinkUpdate.model_validate(_values_from_form(form, editing=True)).model_dump(
            exclude_unset=True
        )
        inbox_id = values.get("inbox_id")
        if inbox_id is not None and not auth.principal.can_see_inbox(inbox_id):
            raise LinkInvalid("inbox_id", "unknown_inbox", "Choose one of the listed numbers.")
        if form.get("action") == "preview":
            preview = await _preview(session, values, link)
            return await _form_page(request, session, auth, form=form, link=link, preview=preview)
        await do_update_link(session, actor=auth.principal.actor, link=link, values=values)
    except ValidationError as exc:
        message = _validation_message(exc)
        return await _form_page(
            request, session, auth, form=form, link=link, error=message, status=422
        )
    except LinkInvalid as exc:
        return await _form_page(
            request,
            session,
            auth,
            form=form,
            link=link,
            error=str(exc),
            error_field=exc.field,
            status=422,
        )
    except LinkConflict as exc:
        return await _form_page(
            request,
            session,
            auth,
            form=form,
            link=link,
            error=str(exc),
            error_field=exc.field,
            status=409,
        )
    return redirect(f"/links/{link.id}?notice=link_saved")


@router.post("/links/{link_id}/deactivate")
async def deactivate_link(session: SessionDep, auth: Manager, link_id: int) -> Response:
    link = await _link_or_404(session, auth, link_id)
    await do_update_link(
        session, actor=auth.principal.actor, link=link, values={"is_active": False}
    )
    return redirect(f"/links/{link.id}?notice=link_deactivated")


@router.post("/links/{link_id}/activate")
async def activate_link(session: SessionDep, auth: Manager, link_id: int) -> Response:
    link = await _link_or_404(session, auth, link_id)
    await do_update_link(session, actor=auth.principal.actor, link=link, values={"is_active": True})
    return redirect(f"/links/{link.id}?notice=link_activated")


# ------------------------------------------------------------------ chart


def chart(stats: LinkStats, *, width: int = 720, height: int = 160) -> dict[str, Any]:
    """Bars of clicks per day with conversations over them, as SVG coordinates (no script)."""
    series = stats.series
    top = max([1, *(d.clicks for d in series), *(d.conversations for d in series)])
    slot = width / max(len(series), 1)
    bar = max(slot * 0.7, 1.0)
    days = []
    for i, day in enumerate(series):
        x = i * slot + (slot - bar) / 2
        clicks_h = day.clicks / top * (height - 20)
        conv_h = day.conversations / top * (height - 20)
        days.append(
            {
                "day": day.day,
                "x": round(x, 1),
                "w": round(bar, 1),
                "clicks": day.clicks,
                "conversations": day.conversations,
                "clicks_y": round(height - clicks_h, 1),
                "clicks_h": round(clicks_h, 1),
                "conv_y": round(height - conv_h, 1),
                "conv_h": round(conv_h, 1),
            }
        )
    return {"width": width, "height": height, "top": top, "days": days}
