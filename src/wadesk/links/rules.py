"""What a link may be: slugs, reference codes, the business number, the prefilled text, and
the one kind of URL a short link ever leads to (``https://wa.me/<digits>?text=...``)."""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

import phonenumbers

WA_ME = "https://wa.me/"
SLUG_MIN, SLUG_MAX = 3, 64
GENERATED_SLUG_LENGTH = 7
REF_MIN, REF_MAX = 3, 16
GENERATED_REF_LENGTH = 6
MESSAGE_MAX = 1000  # characters of the prefilled message
# A wa.me URL longer than this is refused: a conservative bound under which every browser,
# email client and chat app we know passes a link on whole (Thai or Hindi text takes 9
# characters per letter once percent-encoded).
URL_MAX = 4096

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
REF_RE = re.compile(r"^[A-Z0-9]+$")
# No 0/O, 1/I/L: codes are read aloud, typed from flyers and matched in edited text.
SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
REF_LETTERS = "ABCDEFGHJKMNPQRSTUVWXYZ"
REF_DIGITS = "23456789"

# Words a slug may not be: wadesk's own paths, and words that make a short link look like
# a sign-in or account page of the site it is served from.
RESERVED_SLUGS = frozenset(
    {
        "about",
        "account",
        "accounts",
        "admin",
        "administrator",
        "api",
        "app",
        "assets",
        "auth",
        "billing",
        "button",
        "c",
        "config",
        "dashboard",
        "delete",
        "docs",
        "edit",
        "favicon",
        "health",
        "healthz",
        "help-center",
        "index",
        "link",
        "links",
        "login",
        "logout",
        "metrics",
        "new",
        "null",
        "oauth",
        "password",
        "qr",
        "readyz",
        "register",
        "reset",
        "root",
        "security",
        "settings",
        "signin",
        "signout",
        "signup",
        "simulator",
        "static",
        "status",
        "undefined",
        "verify",
        "wadesk",
        "webhook",
        "webhooks",
        "widget",
        "www",
    }
)


class LinkInvalid(ValueError):
    """A link field is not acceptable; ``field`` and ``code`` say which and why."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


@dataclass(frozen=True, slots=True)
class BusinessNumber:
    e164: str  # +5511987654321
    international: str  # +55 11 98765-4321
    digits: str  # 5511987654321 (the wa.me path)
    region: str | None  # BR


def _ascii_hint(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value)
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    plain = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")
    return plain


def normalize_slug(value: str) -> str:
    """A brand keyword as a slug: lower-case ASCII letters, digits and single hyphens."""
    slug = value.strip().lower()
    if not SLUG_MIN <= len(slug) <= SLUG_MAX:
        raise LinkInvalid(
            "slug", "invalid_slug", f"A slug has {SLUG_MIN} to {SLUG_MAX} characters."
        )
    if not SLUG_RE.match(slug):
        hint = _ascii_hint(value)
        suggestion = f" Try {hint!r}." if hint and SLUG_RE.match(hint) else ""
        raise LinkInvalid(
            "slug",
            "invalid_slug",
            "A slug has lower-case letters a-z, digits and single hyphens between them"
            f" (no spaces, accents or other signs).{suggestion}",
        )
    if slug in RESERVED_SLUGS:
        raise LinkInvalid("slug", "reserved_slug", f"{slug!r} is reserved; choose another slug.")
    return slug


def generate_slug() -> str:
    while True:
        slug = "".join(secrets.choice(SLUG_ALPHABET) for _ in range(GENERATED_SLUG_LENGTH))
        if any(ch.isalpha() for ch in slug) and slug not in RESERVED_SLUGS:
            return slug


def normalize_ref(value: str) -> str:
    ref = value.strip().upper()
    if not REF_MIN <= len(ref) <= REF_MAX or not REF_RE.match(ref):
        raise LinkInvalid(
            "ref_code",
            "invalid_ref_code",
            f"A reference code has {REF_MIN} to {REF_MAX} letters A-Z or digits, e.g. XMAS24.",
        )
    return ref


def generate_ref() -> str:
    """Six characters with at least one letter and one digit (so it is found in free text)."""
    while True:
        ref = "".join(secrets.choice(REF_LETTERS + REF_DIGITS) for _ in range(GENERATED_REF_LENGTH))
        if any(ch.isalpha() for ch in ref) and any(ch.isdigit() for ch in ref):
            return ref


def business_number(
    value: str, region: str | None = None, *, strict: bool = True
) -> BusinessNumber:
    """Validate a business phone number (any common format) and format it. ``strict``: a
    number that exists in its country's plan; otherwise one that could (Meta's test numbers
    are +1 555 numbers, and an inbox's number comes from Meta)."""
    text = value.strip()
    if region is None and text and text[0].isdigit():
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        raise LinkInvalid(
            "phone",
            "invalid_phone",
            f"{value!r} is not a phone number in international form (+CC ...): {exc}",
        ) from exc
    valid = phonenumbers.is_valid_number if strict else phonenumbers.is_possible_number
    if not valid(parsed):
        raise LinkInvalid(
            "phone", "invalid_phone", f"{value!r} is not a valid phone number for its country."
        )
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return BusinessNumber(
        e164=e164,
        international=phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL
        ),
        digits=e164[1:],
        region=phonenumbers.region_code_for_number(parsed)
        or phonenumbers.region_code_for_country_code(parsed.country_code or 0),
    )


def _clean_text(value: str, field: str, *, multiline: bool) -> str:
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    for ch in text:
        if ch == "\n" and multiline:
            continue
        # Format characters (zero-width joiners of emoji and Indic scripts, direction marks)
        # are part of real text; control characters are not.
        if unicodedata.category(ch) == "Cc":
            raise LinkInvalid(field, "invalid_text", f"{field} contains a control character.")
    return text.strip()


def normalize_message(value: str) -> str:
    message = _clean_text(value, "message", multiline=True)
    if len(message) > MESSAGE_MAX:
        raise LinkInvalid(
            "message",
            "message_too_long",
            f"The prefilled message has {len(message)} characters; at most {MESSAGE_MAX}.",
        )
    return message


def normalize_label(value: str, field: str, max_length: int) -> str:
    label = _clean_text(value, field, multiline=False)
    if not label:
        raise LinkInvalid(field, "invalid_text", f"{field} cannot be empty.")
    if len(label) > max_length:
        raise LinkInvalid(field, "invalid_text", f"{field} has at most {max_length} characters.")
    return label


def normalize_ref_label(value: str) -> str:
    label = normalize_label(value, "ref_label", 30)
    if any(ch in label for ch in "():\uff1a"):  # \uff1a: the full-width colon
        raise LinkInvalid("ref_label", "invalid_text", "ref_label cannot contain '(', ')' or ':'.")
    return label


def prefilled_text(message: str, ref_code: str, *, include_ref: bool, ref_label: str) -> str:
    """The text the customer finds typed in WhatsApp: the message, then "(ref: CODE)"."""
    if not include_ref:
        return message
    tag = f"({ref_label}: {ref_code})"
    return f"{message} {tag}" if message else tag


def wa_me_url(digits: str, text: str) -> str:
    """``https://wa.me/<digits>?text=<UTF-8, percent-encoded>``: the only target of a link."""
    if not digits.isascii() or not digits.isdigit() or not 6 <= len(digits) <= 15:
        raise LinkInvalid("phone", "invalid_phone", "A wa.me number is 6 to 15 digits.")
    url = WA_ME + digits
    if text:
        url += "?text=" + quote(text, safe="")
    return url


def checked_wa_me_url(digits: str, text: str) -> str:
    url = wa_me_url(digits, text)
    if len(url) > URL_MAX:
        raise LinkInvalid(
            "message",
            "message_too_long",
            f"The wa.me URL would have {len(url)} characters once encoded; at most {URL_MAX}."
            " Shorten the prefilled message.",
        )
    return url


def normalize_optional(value: str | None, field: str, max_length: int) -> str | None:
    if value is None:
        return None
    text = _clean_text(value, field, multiline=False)
    if len(text) > max_length:
        raise LinkInvalid(field, "invalid_text", f"{field} has at most {max_length} characters.")
    return text or None


LANG_RE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")


def normalize_translations(values: dict[str, str]) -> dict[str, str]:
    if len(values) > 40:
        raise LinkInvalid("cta_translations", "invalid_text", "At most 40 translations.")
    result: dict[str, str] = {}
    for lang, label in values.items():
        tag = lang.strip()
        if not LANG_RE.match(tag):
            raise LinkInvalid(
                "cta_translations",
                "invalid_language",
                f"{lang!r} is not a language tag like 'pt' or 'pt-BR'.",
            )
        result[tag] = normalize_label(label, "cta_translations", 60)
    return result
