"""The audit hash chain: how a row's hash is computed, and how the chain is checked.

``hash = HMAC-SHA256(key, canonical JSON of [prev_hash, created_at, actor, action, target, ip,
user agent, details])`` where the key is derived from ``WADESK_SECRET_KEY``. Someone who can
write to the database but does not hold the secret key cannot forge a consistent chain after
editing a row; someone holding both can, which is why docs/security.md says to ship the log
(or at least its head hash) to storage the database's owner cannot rewrite.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

GENESIS = "0" * 64


@lru_cache
def _chain_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"wadesk-audit-chain-v1:" + secret_key.encode()).digest()


def normalise_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """What the JSON column will give back: datetimes as ISO strings, tuples as lists."""
    if not details:
        return {}
    try:
        encoded = orjson.dumps(details, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an integer past 64 bits (a filter someone typed): kept as text
        encoded = orjson.dumps(
            _big_ints_as_text(details), default=str, option=orjson.OPT_NON_STR_KEYS
        )
    value = orjson.loads(encoded)
    assert isinstance(value, dict)
    return value


def _big_ints_as_text(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return str(value)
    if isinstance(value, dict):
        return {k: _big_ints_as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_big_ints_as_text(v) for v in value]
    return value


def row_hash(
    secret_key: str,
    *,
    prev_hash: str,
    created_at: datetime,
    actor_type: str,
    actor_id: str | None,
    action: str,
    target_type: str | None,
    target_id: str | None,
    ip: str | None,
    user_agent: str | None,
    details: dict[str, Any],
) -> str:
    content = orjson.dumps(
        [
            prev_hash,
            created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            actor_type,
            actor_id,
            action,
            target_type,
            target_id,
            ip,
            user_agent,
            details,
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    return hmac.new(_chain_key(secret_key), content, hashlib.sha256).hexdigest()


def hash_of(secret_key: str, row: Any, prev_hash: str) -> str:
    """``row_hash`` of an AuditEvent (or a row with the same attributes) after ``prev_hash``."""
    return row_hash(
        secret_key,
        prev_hash=prev_hash,
        created_at=row.created_at,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        ip=row.ip,
        user_agent=row.user_agent,
        details=row.details or {},
    )


def link(secret_key: str, rows: list[Any], seq: int, previous: str) -> tuple[int, str]:
    """Give rows (AuditEvents, in chain order) their place after (``seq``, ``previous``):
    ``chain_seq``, ``prev_hash`` and ``hash``. Returns the new tail."""
    for row in rows:
        seq += 1
        row.chain_seq = seq
        row.prev_hash = previous
        row.hash = hash_of(secret_key, row, previous)
        previous = row.hash
    return seq, previous


@dataclass(frozen=True, slots=True)
class Break:
    """The first row where the chain does not hold."""

    row_id: int
    reason: str


@dataclass(slots=True)
class ChainChecker:
    """Feed rows in chain order; stops at the first break."""

    secret_key: str
    previous: str = GENESIS
    checked: int = 0
    broken: Break | None = None

    def feed(self, row: Any) -> bool:
        """Check one row (an AuditEvent or a row with the same attributes). False once broken."""
        if self.broken is not None:
            return False
        if row.chain_seq != self.checked + 1 or row.prev_hash != self.previous:
            self.broken = Break(
                row.id,
                "its link to the previous row is wrong: a row before it was removed, inserted"
                " or rewritten",
            )
            return False
        expected = hash_of(self.secret_key, row, row.prev_hash)
        if not hmac.compare_digest(expected, row.hash or ""):
            self.broken = Break(row.id, "its content was changed after it was written")
            return False
        self.previous = row.hash
        self.checked += 1
        return True
