"""Faults the simulated Graph API injects into sends, and Meta's pair rate limit."""

from __future__ import annotations

import random
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter

FaultKind = Literal[
    "http_500", "rate_limit", "pair_limit", "timeout", "undeliverable", "reengagement"
]
PAIR_WINDOW_SECONDS = 6.0


@dataclass
class FaultPlan:
    """What goes wrong, per send. Probabilities are in [0, 1]; ``recipients`` forces a fault.

    A send draws at most one of the answer faults, in the order listed here; the status faults
    (``duplicate_statuses``, ``out_of_order_statuses``) are drawn apart for accepted sends.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    http_500: float = 0.0  # HTTP 500, code 131000
    rate_limit: float = 0.0  # HTTP 429, code 130429
    pair_limit: float = 0.0  # HTTP 400, code 131056
    # Accept (or not, see timeout_accepts) but answer only after timeout_seconds.
    timeout: float = 0.0
    timeout_seconds: float = 30.0
    # True: the message reaches the customer although the answer comes too late for the
    # client, the case that tempts a client to send it twice.
    timeout_accepts: bool = True
    undeliverable: float = 0.0  # accept, then a failed status with 131026
    reengagement: float = 0.0  # accept, then a failed status with 131047
    duplicate_statuses: float = 0.0  # every status webhook of the message is sent twice
    out_of_order_statuses: float = 0.0  # read arrives before delivered
    # Meta's pair rate: at most this many messages to one customer within 6 s (None: no limit).
    pair_limit_per_6s: int | None = None
    # Outside the 24-hour window (or before the customer ever wrote), free-form messages are
    # accepted and then fail with 131047, as on Meta.
    enforce_service_window: bool = False
    # wa_id -> fault applied to every send to that customer (at most recipient_fault_times
    # times per customer when set, so retries can then succeed).
    recipients: dict[str, FaultKind] = field(default_factory=dict)
    recipient_fault_times: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "http_500",
            "rate_limit",
            "pair_limit",
            "timeout",
            "undeliverable",
            "reengagement",
            "duplicate_statuses",
            "out_of_order_statuses",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if self.timeout_seconds < 0:
            raise ValueError("timeout_seconds must not be negative")
        if self.pair_limit_per_6s is not None and self.pair_limit_per_6s < 1:
            raise ValueError("pair_limit_per_6s must be at least 1")

    @classmethod
    def from_dict(cls, data: Any) -> FaultPlan:
        """Validated from JSON (POST /control/faults); raises pydantic.ValidationError."""
        return _ADAPTER.validate_python(data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_ADAPTER = TypeAdapter(FaultPlan)
ANSWER_FAULTS: tuple[FaultKind, ...] = (
    "http_500",
    "rate_limit",
    "pair_limit",
    "timeout",
    "undeliverable",
    "reengagement",
)


@dataclass
class SendFaults:
    answer: FaultKind | None = None  # what happens to this send, if anything
    duplicate_statuses: bool = False
    out_of_order_statuses: bool = False


class FaultInjector:
    """Draws the faults of each send from a plan, and keeps the pair-rate windows."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._windows: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self.set_plan(plan or FaultPlan())

    def set_plan(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)
        self._forced: dict[str, int] = defaultdict(int)

    def draw(self, wa_id: str) -> SendFaults:
        plan = self.plan
        forced = plan.recipients.get(wa_id)
        limit = plan.recipient_fault_times
        if forced is not None and (limit is None or self._forced[wa_id] < limit):
            self._forced[wa_id] += 1
            answer: FaultKind | None = forced
        else:
            answer = next(
                (kind for kind in ANSWER_FAULTS if self._chance(getattr(plan, kind))), None
            )
        return SendFaults(
            answer=answer,
            duplicate_statuses=self._chance(plan.duplicate_statuses),
            out_of_order_statuses=self._chance(plan.out_of_order_statuses),
        )

    def pair_rate_exceeded(self, phone_number_id: str, wa_id: str) -> bool:
        """True when one more message to this customer would break the pair rate."""
        limit = self.plan.pair_limit_per_6s
        if limit is None:
            return False
        window = self._windows[(phone_number_id, wa_id)]
        now = time.monotonic()
        while window and now - window[0] >= PAIR_WINDOW_SECONDS:
            window.popleft()
        return len(window) >= limit

    def record_pair_send(self, phone_number_id: str, wa_id: str) -> None:
        self._windows[(phone_number_id, wa_id)].append(time.monotonic())

    def _chance(self, probability: float) -> bool:
        return probability > 0 and self._random.random() < probability
