"""The demo `make run` starts: an admin, a WhatsApp inbox wired to the embedded simulator.

The simulator is mounted at ``/simulator`` of the same server; the demo inbox's Graph API
base URL points there, so the production code path is the one that runs.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select

from wadesk.accounts.actions import (
    do_add_inbox_member,
    do_create_token,
    do_create_user,
    hash_password,
)
from wadesk.accounts.models import User
from wadesk.audit.actions import Actor
from wadesk.channels.simulator.app import BusinessNumber, Simulator, create_simulator_app
from wadesk.config import Settings
from wadesk.db import Database
from wadesk.inboxes.actions import do_create_whatsapp_inbox, webhook_url
from wadesk.inboxes.models import Inbox
from wadesk.runtime import Runtime

DEMO_EMAIL = "admin@wadesk.local"
DEMO_PHONE_NUMBER_ID = "100000000000001"
DEMO_WABA_ID = "200000000000001"
DEMO_DISPLAY_NUMBER = "+1 555 010 0001"


@dataclass
class DemoCredentials:
    email: str
    password: str
    api_token: str
    inbox_id: int


def simulator_url(settings: Settings) -> str:
    return f"{settings.base_url.rstrip('/')}/simulator"


def mount_embedded_simulator(app: FastAPI, runtime: Runtime) -> None:
    simulator = Simulator(public_url=simulator_url(runtime.settings))
    app.state.simulator = simulator
    app.mount("/simulator", create_simulator_app(simulator))


async def start_embedded_simulator(app: FastAPI, runtime: Runtime) -> None:
    """Register the inboxes whose Graph API is the embedded simulator, now and as they change."""
    await _sync_numbers(app, runtime)

    def on_events(events: list[tuple[str, dict[str, object]]]) -> None:
        if any(kind in ("inbox.created", "inbox.updated") for kind, _ in events):
            runtime.spawn("simulator-sync", _sync_numbers(app, runtime))

    runtime.listeners.append(on_events)


async def _sync_numbers(app: FastAPI, runtime: Runtime) -> None:
    simulator: Simulator = app.state.simulator
    graph = simulator_url(runtime.settings) + "/graph"
    async with runtime.db.session() as session:
        inboxes = (await session.scalars(select(Inbox).where(Inbox.graph_url == graph))).all()
        for inbox in inboxes:
            simulator.register_number(
                BusinessNumber(
                    phone_number_id=inbox.external_account_id,
                    display_phone_number=inbox.display_phone_number or DEMO_DISPLAY_NUMBER,
                    waba_id=inbox.business_account_id or DEMO_WABA_ID,
                    access_token=inbox.access_token,
                    app_secret=inbox.app_secret,
                    webhook_url=webhook_url(runtime.settings, inbox),
                )
            )


def setup_demo(settings: Settings) -> DemoCredentials:
    """Create the demo admin and inbox once; later runs return the same credentials."""
    path: Path = settings.var_dir / "demo-credentials.json"
    if path.exists():
        return DemoCredentials(**json.loads(path.read_text()))
    credentials = asyncio.run(_create_demo(settings))
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(asdict(credentials)))
    return credentials


async def _create_demo(settings: Settings) -> DemoCredentials:
    db = Database(settings)
    actor = Actor.system("demo-setup")
    try:
        async with db.session() as session:
            password = secrets.token_urlsafe(12)
            user = await session.scalar(select(User).where(User.email == DEMO_EMAIL))
            if user is None:
                user = await do_create_user(
                    session,
                    actor=actor,
                    email=DEMO_EMAIL,
                    name="Demo Admin",
                    role="admin",
                    password=password,
                )
            else:  # the credentials file was removed: the printed password must work
                user.password_hash = hash_password(password)
            _, token = await do_create_token(
                session, actor=actor, user=user, name="demo", scopes=("read", "write", "admin")
            )
            inbox = await session.scalar(
                select(Inbox).where(Inbox.external_account_id == DEMO_PHONE_NUMBER_ID)
            )
            if inbox is None:
                inbox = await do_create_whatsapp_inbox(
                    session,
                    actor=actor,
                    settings=settings,
                    name="Demo WhatsApp (simulator)",
                    phone_number_id=DEMO_PHONE_NUMBER_ID,
                    waba_id=DEMO_WABA_ID,
                    display_phone_number=DEMO_DISPLAY_NUMBER,
                    access_token=secrets.token_urlsafe(32),
                    app_secret=secrets.token_urlsafe(32),
                    verify_token=None,
                    graph_url=simulator_url(settings) + "/graph",
                )
                # The simulator does not enforce Meta's pair limit unless asked: a demo where one
                # person types fast should not wait six seconds between replies.
                inbox.pair_rate_per_s, inbox.pair_burst = 20.0, 200
            await do_add_inbox_member(session, actor=actor, inbox_id=inbox.id, user=user)
            from wadesk.automation.demo import setup_faq_demo, setup_order_status_demo

            await setup_order_status_demo(session, settings, inbox.id)
            await setup_faq_demo(session, inbox.id)
            return DemoCredentials(DEMO_EMAIL, password, token, inbox.id)
    finally:
        await db.dispose()
