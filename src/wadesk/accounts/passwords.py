"""Password hashing (argon2id) and the password policy.

The policy follows NIST SP 800-63B: a minimum length, no maximum below 128, no composition
rules, and a check against passwords attackers try first: a list of 19,640 common passwords
(``common-passwords.txt.gz``, the list Django ships, compiled by Royce Williams from breach
corpora; BSD-3-Clause), the same with digits and symbols stripped from its ends
("Password2024!" is "password"), repeated or sequential characters, and words of the context
(the product's name, the person's email and name).
"""

from __future__ import annotations

import gzip
import itertools
import re
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_PASSWORD_LENGTH = 128
_LIST = Path(__file__).with_name("common-passwords.txt.gz")
_hasher = PasswordHasher()  # argon2id, the library's RFC 9106 low-memory profile
# Verified against when the account does not exist, so the answer takes the same time.
_DUMMY_HASH = _hasher.hash("wadesk-no-such-account-dummy-password")


class WeakPassword(ValueError):
    """The password does not meet the policy; the message says why, to the person choosing it."""


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with gzip.open(_LIST, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip().lower() for line in handle if line.strip())


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not there is a hash to check."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def _is_run(text: str) -> bool:
    """'aaaaaaaaaa', 'abcdefghij', '9876543210', 'ababababab'."""
    if len(set(text)) <= 2:
        return True
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    return len(steps) == 1 and steps <= {-1, 1}


def check_password(
    password: str, *, min_length: int, email: str | None = None, name: str | None = None
) -> None:
    """Raise :class:`WeakPassword` when the password should not be used."""
    if len(password) < min_length:
        raise WeakPassword(f"Use at least {min_length} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"Use at most {MAX_PASSWORD_LENGTH} characters.")
    lowered = password.lower()
    core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", lowered)
    squeezed = re.sub(r"[\s\W_]+", "", lowered)
    listed = common_passwords()
    if lowered in listed or core in listed or squeezed in listed:
        raise WeakPassword("This is one of the most common passwords; choose another.")
    if _is_run(lowered) or _is_run(squeezed):
        raise WeakPassword("Avoid repeated or sequential characters.")
    context = {"wadesk"}
    if email:
        context.add(email.split("@", 1)[0].lower())
    if name:
        context.update(part.lower() for part in re.split(r"\W+", name) if part)
    for word in context:
        if (
            len(word) >= 4
            and word in lowered
            and not re.sub(r"[\W\d_]", "", lowered.replace(word, ""))
        ):
            raise WeakPassword("Do not build the password from your name, email or 'wadesk'.")
