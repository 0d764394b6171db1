"""One person, one key: canonical phone digits for matching WhatsApp ids and saved numbers.

WhatsApp's ``wa_id`` can differ from the number a company saved for the same person:
- Brazil: mobile numbers gained a ninth digit; accounts created before keep a wa_id without it
  (55 AA 8XXX-XXXX and 55 AA 98XXX-XXXX are one person).
- Mexico: legacy ``521`` + 10 digits versus ``52`` + 10 digits.
Both forms map to the same key, so a contact is never created twice for them.
"""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    pass


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def phone_key(wa_id_or_number: str) -> str:
    """Canonical digits (country code first) of a wa_id or a number in any common format."""
    d = digits(wa_id_or_number)
    if d.startswith("55") and len(d) == 12 and d[4] in "6789":
        # Brazilian mobile without the ninth digit: 55 AA XXXXXXXX -> 55 AA 9XXXXXXXX
        return d[:4] + "9" + d[4:]
    if d.startswith("521") and len(d) == 13:
        return "52" + d[3:]
    return d


def to_e164(number: str, default_region: str | None = None) -> str:
    """Validate and format a phone number as E.164 (+CCNNN...)."""
    text = number.strip()
    if text and text[0].isdigit() and default_region is None:
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{number!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhone(f"{number!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def e164_from_wa_id(wa_id: str) -> str | None:
    """The E.164 form of a wa_id when it parses as a phone number (it usually does)."""
    try:
        return to_e164("+" + phone_key(wa_id))
    except InvalidPhone:
        return None
