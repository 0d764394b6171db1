"""QR codes of short links (segno): SVG and PNG, with error correction and an optional caption.

Error correction: L (7 %), M (15 %, the default), Q (25 %), H (30 %: "logo-safe", a logo may
cover the middle of the code). The caption is drawn under the code: in SVG as text (the
viewer's fonts render any script), in PNG with the system's Noto fonts per script (Devanagari,
Bengali, Gujarati, Thai, Arabic ...); PNG captions leave emoji out.
"""

from __future__ import annotations

import html
import io
import math
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import segno

if TYPE_CHECKING:
    from PIL import ImageFont

Ecc = Literal["L", "M", "Q", "H"]
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
# First code point, last code point, font files that draw that script (first found wins).
SCRIPT_FONTS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0x0590, 0x05FF, ("NotoSansHebrew-Regular.ttf",)),
    (0x0600, 0x06FF, ("NotoSansArabic-Regular.ttf", "NotoNaskhArabic-Regular.ttf")),
    (0x0900, 0x097F, ("NotoSansDevanagari-Regular.ttf",)),
    (0x0980, 0x09FF, ("NotoSansBengali-Regular.ttf",)),
    (0x0A00, 0x0A7F, ("NotoSansGurmukhi-Regular.ttf",)),
    (0x0A80, 0x0AFF, ("NotoSansGujarati-Regular.ttf",)),
    (0x0B00, 0x0B7F, ("NotoSansOriya-Regular.ttf",)),
    (0x0B80, 0x0BFF, ("NotoSansTamil-Regular.ttf",)),
    (0x0C00, 0x0C7F, ("NotoSansTelugu-Regular.ttf",)),
    (0x0C80, 0x0CFF, ("NotoSansKannada-Regular.ttf",)),
    (0x0D00, 0x0D7F, ("NotoSansMalayalam-Regular.ttf",)),
    (0x0D80, 0x0DFF, ("NotoSansSinhala-Regular.ttf",)),
    (0x0E00, 0x0E7F, ("NotoSansThai-Regular.ttf",)),
    (0x0E80, 0x0EFF, ("NotoSansLao-Regular.ttf",)),
    (0x1000, 0x109F, ("NotoSansMyanmar-Regular.ttf",)),
    (0x1780, 0x17FF, ("NotoSansKhmer-Regular.ttf",)),
)
LATIN_FONTS = ("NotoSans-Regular.ttf", "DejaVuSans.ttf", "LiberationSans-Regular.ttf")
CAPTION_MAX = 80


def make(url: str, ecc: Ecc) -> segno.QRCode:
    return segno.make(url, error=ecc, micro=False, boost_error=False)


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def qr_svg(
    url: str,
    *,
    ecc: Ecc = "M",
    caption: str | None = None,
    scale: int = 10,
    border: int = 4,
    dark: str = "#000000",
    light: str = "#ffffff",
) -> bytes:
    code = make(url, ecc)
    out = io.BytesIO()
    code.save(
        out,
        kind="svg",
        scale=scale,
        border=border,
        dark=dark,
        light=light,
        xmldecl=False,
        title=url,
    )
    inner = out.getvalue().decode()
    if not caption:
        return ('<?xml version="1.0" encoding="utf-8"?>\n' + inner).encode()
    width, height = code.symbol_size(scale=scale, border=border)
    font_size = max(12, scale * 3)
    caption_height = font_size * 2
    total = height + caption_height
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total}"'
        f' viewBox="0 0 {width} {total}">'
        f'<rect width="{width}" height="{total}" fill="{_escape(light)}"/>'
        f"{inner}"
        f'<text x="{width / 2:g}" y="{height + font_size * 1.1:g}" text-anchor="middle"'
        f' font-family="system-ui, \'Noto Sans\', Arial, sans-serif" font-size="{font_size}"'
        f' fill="{_escape(dark)}">{_escape(caption)}</text></svg>'
    ).encode()


def qr_png(
    url: str,
    *,
    ecc: Ecc = "M",
    caption: str | None = None,
    scale: int = 10,
    border: int = 4,
    dark: str = "#000000",
    light: str = "#ffffff",
) -> bytes:
    code = make(url, ecc)
    out = io.BytesIO()
    code.save(out, kind="png", scale=scale, border=border, dark=dark, light=light)
    drawable = _drawable(caption or "")
    if not drawable:
        return out.getvalue()
    from PIL import Image, ImageDraw

    qr_image = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    width, height = qr_image.size
    font_size = max(12, scale * 3)
    font = _font(drawable, font_size)
    draw_probe = ImageDraw.Draw(qr_image)
    left, top, right, bottom = draw_probe.textbbox((0, 0), drawable, font=font)
    # Wide captions: the image grows sideways rather than cutting the text.
    canvas_width = max(width, math.ceil(right - left) + 2 * font_size)
    canvas = Image.new("RGB", (canvas_width, height + font_size * 2), light)
    canvas.paste(qr_image, ((canvas_width - width) // 2, 0))
    draw = ImageDraw.Draw(canvas)
    x = (canvas_width - (right - left)) / 2 - left
    y = height + (font_size * 2 - (bottom - top)) / 2 - top - font_size * 0.3
    draw.text((x, y), drawable, font=font, fill=dark)
    result = io.BytesIO()
    canvas.save(result, format="PNG", optimize=True)
    return result.getvalue()


def _drawable(caption: str) -> str:
    """The caption without emoji (no colour emoji font is drawn into PNGs)."""
    kept = []
    for ch in unicodedata.normalize("NFC", caption):
        code = ord(ch)
        if ch in "\u200d\ufe0f" or 0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF:
            continue
        if unicodedata.category(ch) in ("Cc", "Cs", "Co"):
            continue
        kept.append(ch)
    return " ".join("".join(kept).split())


@lru_cache(maxsize=1)
def _font_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in FONT_DIRS:
        if folder.is_dir():
            for path in sorted(folder.rglob("*.tt[fc]")):
                found.setdefault(path.name, path)
    return found


def font_file_for(text: str) -> Path | None:
    """A font file that draws the text's (first non-Latin) script, or a Latin one."""
    files = _font_files()
    for ch in text:
        code = ord(ch)
        for first, last, names in SCRIPT_FONTS:
            if first <= code <= last:
                for name in names:
                    if name in files:
                        return files[name]
    return next((files[name] for name in LATIN_FONTS if name in files), None)


def _font(text: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont, features

    path = font_file_for(text)
    if path is None:
        return ImageFont.load_default(size=size)
    # Raqm (HarfBuzz) shapes Indic and Thai text; without it letters are drawn unjoined.
    engine = ImageFont.Layout.RAQM if features.check_feature("raqm") else ImageFont.Layout.BASIC
    return ImageFont.truetype(str(path), size=size, layout_engine=engine)
