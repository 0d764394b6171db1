"""`wadesk links create | list | qr`, run as a person would (subprocesses)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import select

from tests.helpers import run_wadesk as wadesk
from wadesk.audit.models import AuditEvent


async def test_create_list_and_qr_from_the_command_line(live, tmp_path: Path):
    _, out, _ = await wadesk(
        live,
        "links",
        "create",
        "--phone",
        "+91 98765 43210",
        "--message",
        "नमस्ते! दिवाली ऑफ़र 🪔",
        "--slug",
        "diwali",
        "--ref",
        "DIWALI5",
        "--campaign",
        "diwali-2025",
    )
    link = json.loads(out)
    assert link["short_url"] == f"{live.base_url}/c/diwali"
    assert link["text"] == "नमस्ते! दिवाली ऑफ़र 🪔 (ref: DIWALI5)"
    redirect = await live.client.get("/c/diwali")
    assert redirect.status_code == 302 and redirect.headers["location"] == link["wa_me_url"]
    code, _, err = await wadesk(
        live, "links", "create", "--phone", "+91 98765 43210", "--slug", "diwali", ok=False
    )
    assert code == 1 and "slug" in err
    code, _, err = await wadesk(live, "links", "create", "--phone", "12", ok=False)
    assert code == 1 and "phone" in err
    _, listed, _ = await wadesk(live, "links", "list", "--json")
    assert [json.loads(line)["slug"] for line in listed.splitlines()] == ["diwali"]
    _, table, _ = await wadesk(live, "links", "list")
    assert "diwali" in table and "DIWALI5" in table
    png = tmp_path / "diwali.png"
    _, out, _ = await wadesk(live, "links", "qr", "diwali", "--out", str(png), "--ecc", "H")
    assert json.loads(out)["url"] == f"{live.base_url}/c/diwali"
    zbarimg = shutil.which("zbarimg")
    assert zbarimg is not None, "zbarimg is missing (apt-get install zbar-tools)"
    decoded = subprocess.run(
        [zbarimg, "--quiet", "--raw", str(png)], capture_output=True, text=True
    )
    assert decoded.stdout.strip() == f"{live.base_url}/c/diwali"
    svg = tmp_path / "diwali.svg"
    await wadesk(live, "links", "qr", "diwali", "--out", str(svg), "--caption", "दिवाली")
    assert "दिवाली" in svg.read_text()
    code, _, _ = await wadesk(live, "links", "qr", "nope", "--out", str(svg), ok=False)
    assert code == 1
    async with live.runtime.db.session() as session:
        actions = (
            await session.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "link"))
        ).all()
    assert actions == ["link.create"]
