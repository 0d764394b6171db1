"""Settings from the environment (``WADESK_*``) or a ``.env`` file.

Every knob has a default that runs on one laptop: SQLite under ``./var/``, no Redis,
a secret key generated into ``./var/secret_key`` on first use.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WADESK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "production", "test"] = "development"
    var_dir: Path = Path("var")
    database_url: str = ""
    db_pool_size: int = Field(default=10, ge=1, le=200)
    redis_url: str = ""
    event_retention_hours: float = Field(default=48.0, gt=0)
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool | None = None

    # Inbound pipeline
    max_webhook_body_bytes: int = 3 * 1024 * 1024
    ingest_batch_size: int = Field(default=200, ge=1, le=5000)
    ingest_sweep_seconds: float = 30.0
    run_worker_in_server: bool = True
    # After start-up, move every object alive to the collector's permanent generation
    # (gc.freeze): full collections then skip the thousands of start-up objects. They took
    # ~200 ms each under bench/faults/festival.py, twice a run, in each server process.
    gc_freeze: bool = True
    # PostgreSQL: open the pool's connections at start-up instead of on the first requests
    # (each costs its handshake and the driver's type set-up, ~7 ms; see Database.warm_up).
    db_warm_up: bool = True

    # Outbound
    outbox_batch_size: int = Field(default=50, ge=1, le=1000)
    outbox_lease_seconds: float = 60.0
    outbox_max_attempts: int = Field(default=10, ge=1)
    outbox_backoff_base_seconds: float = Field(default=2.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=600.0, gt=0)
    # A send that got no answer may have gone out: it is sent again only if no status of
    # it arrives within this time (outbox/tracking.py).
    outbox_unanswered_wait_seconds: float = Field(default=60.0, gt=0)
    outbox_poll_seconds: float = 1.0
    send_rate_per_number: float = 80.0
    pair_rate_per_s: float = 1 / 6
    pair_burst: int = 45
    graph_timeout_seconds: float = 15.0

    # WhatsApp
    graph_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v21.0"
    service_window_hours: int = 24

    # Media
    media_dir: Path | None = None
    media_max_bytes: int = 100 * 1024 * 1024

    # Embedded simulator (make run's demo)
    simulator_enabled: bool = True

    # Click-to-chat links
    links_base_url: str = ""  # where /c/<slug> is served; default: base_url
    links_create_per_hour: int = Field(default=60, ge=1)
    links_click_flush_seconds: float = Field(default=1.0, gt=0)
    links_cache_seconds: float = Field(default=5.0, ge=0)
    links_visitor_retention_days: int = Field(default=2, ge=1)

    # Signing in (web sessions, brute-force limits, MFA)
    session_idle_minutes: int = Field(default=120, ge=1)
    session_max_hours: int = Field(default=12, ge=1)
    reauth_minutes: int = Field(default=10, ge=1)
    password_min_length: int = Field(default=10, ge=8, le=128)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=20, ge=1)
    login_failure_window_minutes: int = Field(default=15, ge=1)
    login_lock_base_seconds: int = Field(default=30, ge=1)
    login_lock_max_seconds: int = Field(default=900, ge=1)
    mfa_policy: Literal["optional", "admins", "everyone"] = "optional"
    mfa_issuer: str = "wadesk"
    audit_view_dedup_minutes: int = Field(default=10, ge=0)

    # Routing (the organisation's routing settings live in the database: routing_config)
    routing_presence_timeout_seconds: float = Field(default=120.0, gt=0)
    routing_sweep_seconds: float = Field(default=5.0, gt=0)
    # Automation's "waiting" trigger: how often one process looks for customers left waiting.
    automation_waiting_sweep_seconds: float = Field(default=30.0, ge=1)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'wadesk.db').resolve()}"

    @property
    def resolved_links_base_url(self) -> str:
        return (self.links_base_url or self.base_url).rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def resolved_media_dir(self) -> Path:
        return self.media_dir or (self.var_dir / "media")

    @property
    def https(self) -> bool:
        """Served over https (cookies get Secure and the __Host- prefix, HSTS is sent)."""
        return self.base_url.lower().startswith("https://")

    @property
    def json_logs(self) -> bool:
        if self.log_json is not None:
            return self.log_json
        return self.env == "production"

    def resolved_secret_key(self) -> str:
        """The configured key, or one generated once into ``var/secret_key``."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
