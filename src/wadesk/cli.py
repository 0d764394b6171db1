"""The `wadesk` command: serve, worker, db, user, token, inbox, deliveries, simulate, demo."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select

from wadesk.accounts.actions import (
    SCOPES,
    AccountError,
    do_add_inbox_member,
    do_create_token,
    do_create_user,
)
from wadesk.accounts.models import User
from wadesk.audit.actions import Actor
from wadesk.automation.commands import automation_app
from wadesk.config import Settings, get_settings
from wadesk.db import Database
from wadesk.links.commands import links_app

app = typer.Typer(help="wadesk: WhatsApp-first customer service.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
user_app = typer.Typer(help="People who use wadesk.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
inbox_app = typer.Typer(help="Inboxes (connected channels).", no_args_is_help=True)
deliveries_app = typer.Typer(help="Stored webhook deliveries.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo that `make run` starts.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
for sub, name in (
    (db_app, "db"),
    (user_app, "user"),
    (token_app, "token"),
    (inbox_app, "inbox"),
    (deliveries_app, "deliveries"),
    (demo_app, "demo"),
    (audit_app, "audit"),
):
    app.add_typer(sub, name=name)
app.add_typer(links_app, name="links")
app.add_typer(automation_app, name="automation")

console = Console()
err = Console(stderr=True)
CLI_ACTOR = Actor.system("cli")
T = TypeVar("T")


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(get_settings())
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def _fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: WADESK_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: WADESK_PORT")] = None,
    workers: Annotated[int, typer.Option(help="Server processes")] = 1,
) -> None:
    """Run the HTTP server (with the outbox worker inside unless WADESK_RUN_WORKER_IN_SERVER=0)."""
    import uvicorn

    settings = get_settings()
    # uvicorn re-raises SIGTERM/SIGINT once its graceful shutdown is over (in-flight requests
    # answered, the runtime stopped): exit 0 then, as systemd and the shutdown test expect.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(
        "wadesk.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=True,
        server_header=False,  # no fingerprint, and one header fewer on every response
        timeout_graceful_shutdown=25,
    )


@app.command()
def worker() -> None:
    """Run background work without HTTP: outbox sends, inbound processing, media downloads."""
    from wadesk.logging import configure_logging
    from wadesk.runtime import Runtime, freeze_startup_objects

    settings = get_settings()
    configure_logging(settings)

    async def main() -> None:
        runtime = Runtime(settings, run_workers=True)
        await runtime.start()
        if settings.gc_freeze:
            freeze_startup_objects()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runtime.stop()

    asyncio.run(main())


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from wadesk import migrate

    get_settings().var_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(revision)
    console.print(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (e.g. 'base')."""
    from wadesk import migrate

    migrate.downgrade(revision)
    console.print(f"database at {revision}")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option()],
    name: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="admin | supervisor | agent")] = "agent",
    password: Annotated[str | None, typer.Option(help="At least 10 characters")] = None,
) -> None:
    """Create a user."""

    async def work(db: Database) -> int:
        async with db.session() as session:
            user = await do_create_user(
                session, actor=CLI_ACTOR, email=email, name=name, role=role, password=password
            )
            return user.id

    try:
        user_id = _run(work)
    except AccountError as exc:
        _fail(str(exc))
    console.print(json.dumps({"id": user_id, "email": email.strip().lower(), "role": role}))


async def _user_by_email(session: Any, email: str) -> User:
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise AccountError(f"no user with email {email}")
    assert isinstance(user, User)
    return user


def _user_change(email: str, change: Callable[[Any, User], Awaitable[object]]) -> object:
    async def work(db: Database) -> object:
        async with db.session() as session:
            return await change(session, await _user_by_email(session, email))

    try:
        return _run(work)
    except AccountError as exc:
        _fail(str(exc))


@user_app.command("list")
def user_list() -> None:
    """Everyone, with role, status and whether two-step verification is on."""
    from wadesk.accounts.queries import list_users

    async def work(db: Database) -> list[User]:
        async with db.session() as session:
            return await list_users(session)

    table = Table("id", "email", "name", "role", "active", "mfa", "last sign-in")
    for u in _run(work):
        table.add_row(
            str(u.id),
            u.email,
            u.name,
            u.role,
            "yes" if u.is_active else "no",
            "on" if u.has_mfa else "off",
            u.last_sign_in_at.isoformat(timespec="minutes") if u.last_sign_in_at else "never",
        )
    console.print(table)


@user_app.command("set-role")
def user_set_role(
    email: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="admin | supervisor | agent")],
) -> None:
    """Change a person's role (audited)."""
    from wadesk.accounts.actions import do_update_user

    _user_change(email, lambda s, u: do_update_user(s, actor=CLI_ACTOR, user=u, role=role))
    console.print(f"{email} is now {role}")


@user_app.command("deactivate")
def user_deactivate(email: Annotated[str, typer.Option()]) -> None:
    """Switch a person off: sessions and tokens end, open conversations return to the queue."""
    from wadesk.accounts.actions import do_deactivate_user

    summary = _user_change(email, lambda s, u: do_deactivate_user(s, actor=CLI_ACTOR, user=u))
    console.print(json.dumps(summary))


@user_app.command("activate")
def user_activate(email: Annotated[str, typer.Option()]) -> None:
    """Let a deactivated person sign in again (their old tokens stay revoked)."""
    from wadesk.accounts.actions import do_reactivate_user

    _user_change(email, lambda s, u: do_reactivate_user(s, actor=CLI_ACTOR, user=u))
    console.print(f"{email} is active")


@user_app.command("set-password")
def user_set_password(
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a person's password (asked twice, not echoed); their sessions end."""
    from wadesk.accounts.actions import do_set_password

    _user_change(email, lambda s, u: do_set_password(s, actor=CLI_ACTOR, user=u, password=password))
    console.print(f"password set for {email}")


@user_app.command("reset-mfa")
def user_reset_mfa(email: Annotated[str, typer.Option()]) -> None:
    """Remove a person's two-step verification (lost phone); their sessions end."""
    from wadesk.accounts.actions import do_reset_mfa

    _user_change(email, lambda s, u: do_reset_mfa(s, actor=CLI_ACTOR, user=u))
    console.print(f"two-step verification reset for {email}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit hash chain; exit 1 and name the first broken row if it was tampered."""
    from wadesk.audit.chainer import chain_pending
    from wadesk.audit.queries import verify_chain

    key = get_settings().resolved_secret_key()

    async def work(db: Database) -> Any:
        await chain_pending(db, key)
        async with db.session() as session:
            return await verify_chain(session, key)

    result = _run(work)
    if result.broken is not None:
        err.print(
            f"[red]audit chain broken at row {result.broken.row_id}[/red]: {result.broken.reason}"
            f" ({result.checked} rows before it verified)"
        )
        raise typer.Exit(code=1)
    console.print(f"audit chain intact: {result.checked} rows, head {result.head}")


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Option(help="The user the token acts as")],
    name: Annotated[str, typer.Option()] = "cli",
    scopes: Annotated[
        str, typer.Option(help=f"Comma-separated: {', '.join(SCOPES)}")
    ] = "read,write",
) -> None:
    """Create an API token; it is printed once, on the last line."""

    async def work(db: Database) -> str:
        async with db.session() as session:
            user = await session.scalar(select(User).where(User.email == email.strip().lower()))
            if user is None:
                raise AccountError(f"no user with email {email}")
            _, clear = await do_create_token(
                session,
                actor=CLI_ACTOR,
                user=user,
                name=name,
                scopes=tuple(s.strip() for s in scopes.split(",") if s.strip()),
            )
            return clear

    try:
        token = _run(work)
    except AccountError as exc:
        _fail(str(exc))
    err.print("Store it now: it is not shown again.")
    print(token)


@inbox_app.command("add-whatsapp")
def inbox_add_whatsapp(
    name: Annotated[str, typer.Option()],
    phone_number_id: Annotated[str, typer.Option()],
    access_token: Annotated[str, typer.Option(help="A permanent (system user) token")],
    app_secret: Annotated[str, typer.Option(help="The Meta app's secret (signs webhooks)")],
    waba_id: Annotated[str | None, typer.Option(help="WhatsApp Business Account id")] = None,
    verify_token: Annotated[str | None, typer.Option(help="Generated if not given")] = None,
    display_phone_number: Annotated[str | None, typer.Option()] = None,
    graph_url: Annotated[str | None, typer.Option(help="Default: WADESK_GRAPH_URL")] = None,
) -> None:
    """Connect a WhatsApp Cloud API number. Prints JSON with id, webhook_url and verify_token."""
    from wadesk.inboxes.actions import InboxError, do_create_whatsapp_inbox, webhook_url

    settings = get_settings()

    async def work(db: Database) -> dict[str, Any]:
        async with db.session() as session:
            inbox = await do_create_whatsapp_inbox(
                session,
                actor=CLI_ACTOR,
                settings=settings,
                name=name,
                phone_number_id=phone_number_id,
                waba_id=waba_id,
                access_token=access_token,
                app_secret=app_secret,
                verify_token=verify_token,
                display_phone_number=display_phone_number,
                graph_url=graph_url,
            )
            return {
                "id": inbox.id,
                "webhook_url": webhook_url(settings, inbox),
                "verify_token": inbox.verify_token,
            }

    try:
        result = _run(work)
    except InboxError as exc:
        _fail(str(exc))
    print(json.dumps(result))


@inbox_app.command("add-member")
def inbox_add_member(inbox_id: int, email: Annotated[str, typer.Option()]) -> None:
    """Give a user access to an inbox."""

    async def work(db: Database) -> None:
        async with db.session() as session:
            user = await session.scalar(select(User).where(User.email == email.strip().lower()))
            if user is None:
                raise AccountError(f"no user with email {email}")
            await do_add_inbox_member(session, actor=CLI_ACTOR, inbox_id=inbox_id, user=user)

    try:
        _run(work)
    except AccountError as exc:
        _fail(str(exc))
    console.print(f"{email} is a member of inbox {inbox_id}")


@deliveries_app.command("list")
def deliveries_list(status: str = "unprocessable", limit: int = 50) -> None:
    """Show stored deliveries (by default the ones that could not be processed)."""
    from wadesk.ingest.models import WebhookDelivery

    async def work(db: Database) -> list[WebhookDelivery]:
        async with db.session() as session:
            rows = await session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.status == status)
                .order_by(WebhookDelivery.id.desc())
                .limit(limit)
            )
            return list(rows.all())

    table = Table("id", "received", "status", "error")
    for d in _run(work):
        table.add_row(
            str(d.id), d.received_at.isoformat(timespec="seconds"), d.status, d.error or ""
        )
    console.print(table)


@deliveries_app.command("replay")
def deliveries_replay(
    ids: Annotated[list[int] | None, typer.Option("--id", help="Repeat; default: all")] = None,
) -> None:
    """Process unprocessable deliveries again (after an upgrade). A running server picks them up
    at its next sweep (WADESK_INGEST_SWEEP_SECONDS)."""
    from wadesk.ingest.actions import do_replay_deliveries

    async def work(db: Database) -> int:
        async with db.session() as session:
            return await do_replay_deliveries(session, actor=CLI_ACTOR, ids=ids or None)

    console.print(f"{_run(work)} deliveries queued for processing")


@app.command()
def simulate(
    messages: Annotated[int, typer.Option(help="How many customer messages")] = 100,
    customers: Annotated[int, typer.Option(help="From how many distinct customers")] = 10,
    rate: Annotated[float, typer.Option(help="Messages per second")] = 50.0,
    duplicates: Annotated[float, typer.Option(help="Fraction of deliveries sent twice")] = 0.0,
    batch: Annotated[int, typer.Option(help="Messages per webhook delivery")] = 1,
    inbox_id: Annotated[int | None, typer.Option(help="Default: the first WhatsApp inbox")] = None,
    url: Annotated[str | None, typer.Option(help="Webhook URL; default: the inbox's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Send signed webhooks as Meta would (retries, duplicates, batches) to a running wadesk."""
    from wadesk.channels.simulator.load import run_load
    from wadesk.inboxes.actions import webhook_url
    from wadesk.inboxes.models import Inbox

    settings = get_settings()

    async def find(db: Database) -> tuple[str, str, str, str]:
        async with db.session() as session:
            query = select(Inbox).where(Inbox.channel_type == "whatsapp").order_by(Inbox.id)
            if inbox_id is not None:
                query = query.where(Inbox.id == inbox_id)
            inbox = await session.scalar(query)
            if inbox is None:
                raise AccountError("no WhatsApp inbox: create one with `wadesk inbox add-whatsapp`")
            return (
                url or webhook_url(settings, inbox),
                inbox.app_secret,
                inbox.external_account_id,
                inbox.display_phone_number or "",
            )

    try:
        target, secret, phone_number_id, display = _run(find)
    except AccountError as exc:
        _fail(str(exc))
    with Progress(console=err, disable=as_json) as progress:
        task = progress.add_task("sending", total=messages)
        report = asyncio.run(
            run_load(
                webhook_url=target,
                app_secret=secret,
                phone_number_id=phone_number_id,
                display_phone_number=display,
                messages=messages,
                customers=customers,
                rate=rate,
                duplicates=duplicates,
                batch=batch,
                progress=lambda n: progress.update(task, completed=n),
            )
        )
    data = report.to_dict()
    if as_json:
        print(json.dumps(data))
        return
    table = Table("figure", "value")
    for key, value in data.items():
        table.add_row(key, str(value))
    console.print(table)


@demo_app.command("setup")
def demo_setup() -> None:
    """Create the demo admin and WhatsApp inbox (idempotent) and print how to sign in."""
    from wadesk.demo import setup_demo, simulator_url

    settings: Settings = get_settings()
    credentials = setup_demo(settings)
    base = settings.base_url.rstrip("/")
    console.print(f"[bold green]wadesk[/bold green] is starting at {base}")
    console.print(f"  admin login : {credentials.email} / {credentials.password}")
    console.print(f"  API token   : {credentials.api_token}")
    console.print(f"  API docs    : {base}/api/docs")
    console.print(f"  customer phone (simulator): {simulator_url(settings)}/")
