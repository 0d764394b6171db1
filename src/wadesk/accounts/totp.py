"""TOTP (RFC 6238) with pyotp, recovery codes, and the enrolment QR code (segno, SVG)."""

from __future__ import annotations

import secrets
import time

import pyotp
import segno

from wadesk.crypto import keyed_hash

RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_secret() -> str:
    return pyotp.random_base32(length=32)  # 160 bits, as RFC 4226 recommends


def grouped(secret: str) -> str:
    """The manual key as people type it: groups of four."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, *, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """An SVG QR code as a data: URI (allowed by the CSP's img-src; no script, no request)."""
    data_uri: str = segno.make(uri, error="m").svg_data_uri(scale=5, border=2, dark="#111827")
    return data_uri


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def matching_step(
    secret: str, code: str, *, after_step: int | None, now: float | None = None
) -> int | None:
    """The time step a 6-digit code belongs to (one step of clock drift either way), or None.

    A step at or before ``after_step`` (the last one accepted) is refused: a code works once.
    """
    code = normalise_code(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    at = time.time() if now is None else now
    current = int(at // totp.interval)
    for step in (current, current - 1, current + 1):
        if after_step is not None and step <= after_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def hash_recovery_code(code: str) -> str:
    return keyed_hash(normalise_code(code), "mfa-recovery-code")


def looks_like_recovery_code(code: str) -> bool:
    normal = normalise_code(code)
    return len(normal) == 10 and all(ch in _RECOVERY_ALPHABET for ch in normal)
