"""QR codes decode to the short URL (zbarimg from Debian's zbar-tools reads them back)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.links.conftest import new_link
from wadesk.links.qr import font_file_for, qr_png, qr_svg

ZBARIMG = shutil.which("zbarimg")


def decode(path: Path) -> list[str]:
    if ZBARIMG is None:
        pytest.fail("zbarimg is missing: `make test` installs it (apt-get install zbar-tools)")
    done = subprocess.run(
        [ZBARIMG, "--quiet", "--raw", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("ecc", ["L", "M", "Q", "H"])
@pytest.mark.parametrize("caption", [None, "Fale conosco 💬", "हमसे बात करें", "สวัสดีครับ"])
async def test_png_decodes_to_the_short_url(live, admin, tmp_path, ecc, caption):
    link = await new_link(live, admin, slug="promo-natal")
    params = {"ecc": ecc, "scale": 6}
    if caption:
        params["caption"] = caption
    response = await live.client.get(
        f"/api/v1/links/{link['id']}/qr.png", params=params, headers=admin
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    path = tmp_path / "code.png"
    path.write_bytes(response.content)
    assert decode(path) == [f"{live.base_url}/c/promo-natal"]


async def test_svg_renders_in_a_browser_and_decodes_to_the_short_url(
    live,
    admin,
    browser,
    tmp_path,
):
    link = await new_link(live, admin, slug="black-friday")
    response = await live.client.get(
        f"/api/v1/links/{link['id']}/qr.svg",
        params={"ecc": "H", "caption": "Chat <now> & save", "dark": "#075E54"},
        headers=admin,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    svg = response.text
    assert "Chat &lt;now&gt; &amp; save" in svg and "<script" not in svg
    page = await browser.new_page(viewport={"width": 600, "height": 700})
    await page.set_content(f"<body style='margin:0;background:#fff'>{svg.split('?>', 1)[1]}</body>")
    path = tmp_path / "svg.png"
    await page.screenshot(path=str(path))
    assert decode(path) == [f"{live.base_url}/c/black-friday"]
    assert await page.locator("text=Chat <now> & save").count() == 1


def test_error_correction_levels_differ_and_short_urls_stay_small():
    url = "https://desk.example.com/c/promo-natal-2025"
    sizes = {ecc: len(qr_svg(url, ecc=ecc)) for ecc in ("L", "M", "Q", "H")}
    assert sizes["L"] < sizes["H"]
    png = qr_png(url, ecc="H", caption="ગુજરાતી ગ્રાહકો માટે")
    assert png.startswith(b"\x89PNG")


def test_captions_get_a_font_for_their_script():
    for text, family in (
        ("हमसे बात करें", "Devanagari"),
        ("আমাদের সাথে কথা বলুন", "Bengali"),
        ("અમારી સાથે વાત કરો", "Gujarati"),
        ("ติดต่อเรา", "Thai"),
    ):
        font = font_file_for(text)
        assert font is not None and family in font.name, (text, font)
    latin = font_file_for("Talaðu við okkur")
    assert latin is not None


async def test_qr_needs_a_manager(live, admin):
    link = await new_link(live, admin)
    assert (await live.client.get(f"/api/v1/links/{link['id']}/qr.png")).status_code == 401
    bad = await live.client.get(
        f"/api/v1/links/{link['id']}/qr.png", params={"ecc": "X"}, headers=admin
    )
    assert bad.status_code == 422
