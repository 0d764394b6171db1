"""Token buckets: per business number (messages/s) and per recipient (WhatsApp's pair limit).

State is per process. A deployment with several workers divides the configured rate between
them (docs/operations.md); a 130429/131056 answer is retried with backoff in any case.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, capacity: float) -> TokenBucket:
        return cls(rate, capacity, capacity, time.monotonic())

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self) -> float:
        """Seconds until one token is available (0 if now)."""
        self._refill(time.monotonic())
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate if self.rate > 0 else float("inf")

    def take(self) -> None:
        self._refill(time.monotonic())
        self.tokens -= 1


class Pacer:
    def __init__(self, max_recipients: int = 100_000) -> None:
        self._numbers: dict[int, TokenBucket] = {}
        self._pairs: dict[tuple[int, str], TokenBucket] = {}
        self._max_recipients = max_recipients

    def _number(self, inbox_id: int, rate: float) -> TokenBucket:
        bucket = self._numbers.get(inbox_id)
        if bucket is None or bucket.rate != rate:
            bucket = self._numbers[inbox_id] = TokenBucket.full(rate, max(1.0, rate))
        return bucket

    def _pair(self, inbox_id: int, recipient: str, rate: float, burst: int) -> TokenBucket:
        key = (inbox_id, recipient)
        bucket = self._pairs.get(key)
        if bucket is None or bucket.rate != rate or bucket.capacity != burst:
            if len(self._pairs) >= self._max_recipients:
                self._forget_full_buckets()
            bucket = self._pairs[key] = TokenBucket.full(rate, float(burst))
        return bucket

    def _forget_full_buckets(self) -> None:
        now = time.monotonic()
        for key, bucket in list(self._pairs.items()):
            bucket._refill(now)
            if bucket.tokens >= bucket.capacity:
                del self._pairs[key]

    def delay(
        self, inbox_id: int, recipient: str, *, rate: float, pair_rate: float, pair_burst: int
    ) -> float:
        """Seconds to wait before this send may go (0: go now, and the tokens are taken)."""
        number = self._number(inbox_id, rate)
        pair = self._pair(inbox_id, recipient, pair_rate, pair_burst)
        wait = max(number.wait_time(), pair.wait_time())
        if wait == 0:
            number.take()
            pair.take()
        return wait

    def penalise_pair(self, inbox_id: int, recipient: str) -> None:
        """The provider said 131056: empty this recipient's bucket."""
        bucket = self._pairs.get((inbox_id, recipient))
        if bucket is not None:
            bucket.tokens = min(bucket.tokens, 0.0)
