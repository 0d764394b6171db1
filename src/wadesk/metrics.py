"""Prometheus metrics of the message pipeline (per process; scrape every process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES_RECEIVED = Counter(
    "wadesk_webhook_deliveries_received_total", "Webhook deliveries stored", ["channel"]
)
DELIVERIES_REJECTED = Counter(
    "wadesk_webhook_deliveries_rejected_total", "Webhook requests refused", ["channel", "reason"]
)
DELIVERIES_PROCESSED = Counter(
    "wadesk_webhook_deliveries_processed_total", "Webhook deliveries processed", ["outcome"]
)
MESSAGES_RECEIVED = Counter("wadesk_messages_received_total", "Inbound messages stored")
MESSAGES_DUPLICATE = Counter(
    "wadesk_messages_duplicate_total", "Inbound messages already stored (retries, replays)"
)
STATUSES_APPLIED = Counter("wadesk_statuses_applied_total", "Status updates applied")
MESSAGES_SENT = Counter("wadesk_messages_sent_total", "Outbound messages accepted by the provider")
MESSAGES_FAILED = Counter(
    "wadesk_messages_failed_total", "Outbound messages failed for good", ["code"]
)
SEND_RETRIES = Counter("wadesk_send_retries_total", "Transient send failures retried", ["code"])
# ADR 0006: time a loop waited while webhooks piled up (rate() = the share of time it yielded).
STEPPED_ASIDE_SECONDS = Counter(
    "wadesk_stepped_aside_seconds",
    "Seconds a loop that was behind waited for webhooks piling up (acceptance first)",
    ["loop"],
)
OUTBOX_DEPTH = Gauge("wadesk_outbox_depth", "Outbound messages waiting to be sent")
# PostgreSQL's after-commit loops (ADRs 0014, 0031): an age that keeps growing means the loop
# is stuck or cannot keep up. 0 when nothing waits (and always on SQLite).
EVENTS_WAITING_SECONDS = Gauge(
    "wadesk_events_staged_oldest_seconds",
    "Age of the oldest committed event still waiting for its id in the log (the sequencer)",
)
AUDIT_UNCHAINED_SECONDS = Gauge(
    "wadesk_audit_unchained_oldest_seconds",
    "Age of the oldest audit row not yet linked into the hash chain (the chainer)",
)
PROCESSING_LATENCY = Histogram(
    "wadesk_processing_latency_seconds",
    "From a delivery being stored to its messages being committed",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
