"""Copy-ready snippets of a link: the floating website button (one script tag), an HTML button
for a header or footer, an email signature block that renders in Gmail and Outlook (tables,
inline styles, no images) and texts for social posts. Every snippet points at the short URL,
so its clicks are counted; every value in them is escaped for where it goes."""

from __future__ import annotations

import html
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from wadesk.links.models import Link
from wadesk.links.rules import business_number
from wadesk.links.schemas import WEEKDAYS, SocialTexts, WidgetSettings

WHATSAPP_GREEN = "#25D366"
ICON_PATH = (
    "M12 3C7 3 3 6.6 3 11c0 2.2 1 4.2 2.6 5.6L4.8 21l4.5-2c.9.3 1.8.4 2.7.4 5 0 9-3.6 9-8.2S17 3"
    " 12 3z"
)


@lru_cache(maxsize=1)
def _button_template() -> str:
    return resources.files("wadesk.links").joinpath("static/button.js").read_text("utf-8")


def _js_literal(value: Any) -> str:
    """JSON that is safe inside a script (no "</script>", no line separators)."""
    text = orjson.dumps(value).decode()
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def button_config(link: Link, short: str) -> dict[str, Any]:
    widget = WidgetSettings.model_validate(link.widget or {})
    return {
        "slug": link.slug,
        "href": short,
        "text": widget.text or link.cta_label,
        # An explicit button text wins over the CTA's translations.
        "translations": {} if widget.text else dict(link.cta_translations or {}),
        "color": widget.color,
        "text_color": widget.text_color,
        "position": widget.position,
        "offset": widget.offset,
        "devices": widget.devices,
        "hide_outside_hours": widget.hide_outside_hours,
        "hours": widget.hours.model_dump(mode="json") if widget.hours else None,
    }


def button_script(link: Link, short: str) -> str:
    return _button_template().replace("/*CONFIG*/ {}", _js_literal(button_config(link, short)))


def script_tag(base_url: str, slug: str) -> str:
    return f'<script src="{html.escape(base_url)}/c/{slug}/button.js" async></script>'


def html_button(link: Link, short: str) -> str:
    widget = WidgetSettings.model_validate(link.widget or {})
    label = html.escape(widget.text or link.cta_label)
    return (
        f'<a href="{html.escape(short)}" target="_blank" rel="noopener"'
        ' style="display:inline-flex;align-items:center;gap:8px;padding:10px 18px;'
        f"border-radius:999px;background:{widget.color};color:{widget.text_color};"
        "font:600 15px/1.2 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;"
        'text-decoration:none;">'
        '<svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24">'
        f'<path fill="currentColor" d="{ICON_PATH}"/></svg>{label}</a>'
    )


def email_signature_html(link: Link, short: str) -> str:
    """A "bulletproof" button: a table cell with bgcolor (Outlook's Word engine ignores most
    CSS) around a padded link (Gmail strips <style>, so every style is inline)."""
    widget = WidgetSettings.model_validate(link.widget or {})
    number = business_number(link.phone_e164, strict=False).international
    href = html.escape(short)
    label = html.escape(link.cta_label)
    font = "font-family:Arial,Helvetica,sans-serif;"
    return (
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0"'
        ' style="border-collapse:collapse;mso-table-lspace:0pt;mso-table-rspace:0pt;">'
        "<tr>"
        f'<td style="padding:0 0 6px 0;{font}font-size:13px;line-height:18px;color:#54656f;">'
        f'WhatsApp: <a href="{href}" style="color:#128C7E;text-decoration:none;">'
        f"{html.escape(number)}</a></td>"
        "</tr><tr><td>"
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0"'
        ' style="border-collapse:separate;"><tr>'
        f'<td align="center" bgcolor="{widget.color}"'
        f' style="border-radius:4px;background-color:{widget.color};">'
        f'<a href="{href}" target="_blank"'
        f' style="display:inline-block;padding:8px 16px;{font}font-size:14px;'
        f"line-height:18px;font-weight:bold;color:{widget.text_color};text-decoration:none;"
        f'border-radius:4px;border:1px solid {widget.color};">{label}</a>'
        "</td></tr></table>"
        "</td></tr></table>"
    )


def email_signature_text(link: Link, short: str) -> str:
    number = business_number(link.phone_e164, strict=False).international
    return f"{link.cta_label}: {short}\nWhatsApp: {number}"


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def social_texts(link: Link, short: str) -> SocialTexts:
    cta = link.cta_label
    bare = short.split("://", 1)[-1]
    return SocialTexts(
        generic=f"💬 {cta}: {short}",
        # X counts every link as 23 characters; the rest must fit in 280.
        x=f"{_fit(cta, 250)} 👉 {short}",
        instagram_bio=_fit(f"💬 {cta} ⬇️ {bare}", 150),
        facebook=f"💬 {cta} — {short}",
        linkedin=f"{cta}: {short}",
    )


def is_open(settings: WidgetSettings, when: datetime) -> bool:
    """Whether the weekly schedule is open at ``when`` (what the button computes in JS)."""
    if settings.hours is None:
        return True
    local = when.astimezone(ZoneInfo(settings.hours.time_zone))
    now = local.strftime("%H:%M")
    ranges = settings.hours.days.get(WEEKDAYS[local.weekday()], [])
    return any(start <= now < end for start, end in ranges)
