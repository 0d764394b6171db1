"""Structured logs: JSON in production, readable in development. No secrets, no message bodies."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.types import EventDict

from wadesk.config import Settings

SENSITIVE_KEYS = {"access_token", "app_secret", "verify_token", "password", "token", "body", "text"}


def _redact(_logger: Any, _name: str, event: EventDict) -> EventDict:
    for key in list(event):
        if key in SENSITIVE_KEYS:
            event[key] = "[redacted]"
    return event


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time of writing (test capture, redirection)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(settings: Settings) -> None:
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.json_logs
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # structlog's default prints every frame's local variables: a bearer token in a
            # request's headers, a customer's message in a parser's. Tracebacks only.
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            *([structlog.processors.format_exc_info] if settings.json_logs else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
