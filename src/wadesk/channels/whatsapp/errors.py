"""Graph API error codes: which are worth retrying, and what to tell a person."""

from __future__ import annotations

TRANSIENT_CODES = {
    "1",  # API unknown
    "2",  # API service temporarily unavailable
    "4",  # application request limit
    "80007",  # WABA rate limit
    "130429",  # throughput rate limit
    "131000",  # something went wrong
    "131016",  # service unavailable
    "131056",  # pair rate limit
    "133004",  # server temporarily unavailable
}
PERMANENT_CODES = {
    "100",
    "190",
    "368",
    "131026",
    "131047",
    "131048",
    "131049",
    "131051",
    "131052",
    "131053",
    *(str(code) for code in range(132000, 132013)),
}
# Codes that say the inbox itself needs an admin, not just this message.
ACCOUNT_CODES = {"190", "368", "131031"}

HUMAN_REASONS = {
    "4": "Too many requests to WhatsApp for this app; retrying later.",
    "80007": "The WhatsApp Business Account hit its rate limit; retrying later.",
    "100": "WhatsApp rejected a parameter of this message.",
    "190": "The inbox's WhatsApp access token expired or is invalid; an admin must renew it.",
    "368": "The number is temporarily blocked for policy violations.",
    "130429": "Sending too fast for this number; retrying.",
    "131000": "WhatsApp had an internal error; retrying.",
    "131026": "Not delivered: the recipient is not on WhatsApp, or uses an old version.",
    "131031": "The WhatsApp Business Account is locked.",
    "131047": "More than 24 hours since the customer last wrote: send an approved template.",
    "131048": "Not sent: the number hit WhatsApp's spam rate limit.",
    "131049": "WhatsApp held back this marketing message to keep engagement healthy.",
    "131051": "WhatsApp does not support this message type.",
    "131052": "WhatsApp could not download the media of this message.",
    "131053": "WhatsApp could not process the media (format or size).",
    "131056": "Too many messages to this customer in a short time; queued.",
    "132000": "The template's parameter count does not match.",
    "132001": "The template does not exist in this language, or is not approved.",
    "132005": "The template's text is too long once filled in.",
    "132007": "The template breaks WhatsApp's policy.",
    "132012": "A template parameter has the wrong format.",
    "network": "WhatsApp could not be reached; retrying.",
    "http_5xx": "WhatsApp answered with a server error; retrying.",
    "http_429": "WhatsApp asked us to slow down; retrying.",
}


def is_transient(code: str) -> bool:
    if code in PERMANENT_CODES:
        return False
    return code in TRANSIENT_CODES or code in ("network", "http_5xx", "http_429")


def human_reason(code: str, title: str | None) -> str:
    return HUMAN_REASONS.get(code) or (title or f"WhatsApp error {code}")
