"""WhatsApp message templates: the preview a customer would see, and send parameters."""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def _component(components: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((c for c in components if str(c.get("type", "")).upper() == kind), None)


def placeholders_of(text: str | None) -> list[str]:
    seen: list[str] = []
    for name in PLACEHOLDER.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def _fill(text: str, values: list[str]) -> str:
    names = placeholders_of(text)
    by_name = {
        name: values[i] if i < len(values) else f"{{{{{name}}}}}" for i, name in enumerate(names)
    }
    return PLACEHOLDER.sub(lambda m: by_name.get(m.group(1), m.group(0)), text)


def parameter_counts(components: list[dict[str, Any]]) -> dict[str, int]:
    counts = {}
    for kind in ("HEADER", "BODY"):
        component = _component(components, kind)
        text = component.get("text") if component else None
        counts[kind.lower()] = len(placeholders_of(text if isinstance(text, str) else None))
    return counts


def preview(
    components: list[dict[str, Any]], body: list[str], header: list[str] | None = None
) -> dict[str, Any]:
    """Header, body and footer with the parameters filled in, and the buttons' titles."""
    out: dict[str, Any] = {}
    for kind, values in (("HEADER", header or []), ("BODY", body), ("FOOTER", [])):
        component = _component(components, kind)
        text = component.get("text") if component else None
        if component is not None and kind == "HEADER" and component.get("format", "TEXT") != "TEXT":
            out["header"] = f"[{str(component.get('format')).lower()}]"
            continue
        out[kind.lower()] = _fill(text, values) if isinstance(text, str) else None
    buttons = _component(components, "BUTTONS")
    out["buttons"] = [
        str(b.get("text", "")) for b in (buttons or {}).get("buttons", []) if isinstance(b, dict)
    ]
    return out


def send_components(
    components: list[dict[str, Any]], body: list[str], header: list[str] | None = None
) -> list[dict[str, Any]]:
    """The ``components`` of a send request (positional text parameters)."""
    out: list[dict[str, Any]] = []
    counts = parameter_counts(components)
    if counts["header"]:
        out.append(
            {"type": "header", "parameters": [{"type": "text", "text": v} for v in header or []]}
        )
    if counts["body"]:
        out.append({"type": "body", "parameters": [{"type": "text", "text": v} for v in body]})
    return out
