"""The simulator: its in-memory state, its behaviour, and the FastAPI app that serves it.

Mount the app anywhere (e.g. ``/simulator``) and pass that mount's external URL as
``public_url``: the Graph API is then at ``{public_url}/graph``, the customer's phone page at
``{public_url}/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from wadesk.channels.simulator import webhooks
from wadesk.channels.simulator.control import control_router
from wadesk.channels.simulator.errors import GraphError, invalid_parameter, status_error
from wadesk.channels.simulator.faults import FaultInjector, FaultPlan, SendFaults
from wadesk.channels.simulator.graph import graph_router, media_download_router
from wadesk.channels.simulator.inbound import build_customer_message
from wadesk.channels.simulator.media import MediaItem, MediaStore
from wadesk.channels.simulator.message_templates import MessageTemplate, TemplateStore
from wadesk.channels.simulator.page import STATIC_DIR, page_router
from wadesk.channels.simulator.state import (
    BusinessNumber,
    ChatMessage,
    Conversation,
    CustomerMessage,
    brazil_variant,
    digits,
    new_wamid,
)
from wadesk.channels.simulator.stats import SendStats, fingerprint
from wadesk.channels.simulator.statuses import (
    STATUS_RANK,
    WINDOW_SECONDS,
    Billing,
    ConversationIds,
    billing_for,
    status_item,
)
from wadesk.channels.simulator.validation import validate_send

__all__ = [
    "BusinessNumber",
    "CustomerMessage",
    "FaultPlan",
    "Simulator",
    "WebhookDeliveryError",
    "create_simulator_app",
]

TYPING_SECONDS = 25.0  # how long Meta shows a typing indicator at most
# Webhook requests in flight at once. httpx's pool slows down sharply with many requests in
# flight (bench/httpclient.py); thousands of status webhooks at once made each take seconds.
WEBHOOK_CONCURRENCY = 16


class WebhookDeliveryError(RuntimeError):
    """The webhook URL did not answer 200 within the retry budget."""

    def __init__(self, url: str, wamids: list[str]) -> None:
        super().__init__(f"webhook {url} did not accept the delivery of {', '.join(wamids)}")
        self.url = url
        self.wamids = wamids


class Simulator:
    """Meta's side of WhatsApp: Graph API state, webhooks, and the customers' phones."""

    def __init__(
        self,
        *,
        public_url: str,
        auto_read_seconds: float | None = 2.0,
        status_delay_seconds: float = 0.05,
        template_review_seconds: float = 1.0,
        media_url_ttl_seconds: float = 300.0,
        webhook_retry_delays: Sequence[float] = webhooks.RETRY_DELAYS,
        webhook_retry_budget_seconds: float = 60.0,
        webhook_timeout_seconds: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``http``: a client to deliver webhooks with (left open by :meth:`aclose`); by
        default the simulator makes its own, with ``webhook_timeout_seconds``."""
        self.public_url = public_url.rstrip("/")
        self.auto_read_seconds = auto_read_seconds
        self.status_delay_seconds = status_delay_seconds
        self.template_review_seconds = template_review_seconds
        self.webhook_retry_delays = tuple(webhook_retry_delays)
        self.webhook_retry_budget_seconds = webhook_retry_budget_seconds
        self.webhook_timeout_seconds = webhook_timeout_seconds
        self.numbers: dict[str, BusinessNumber] = {}
        self.customers: dict[str, str] = {}  # wa_id -> profile name
        self.conversations: dict[tuple[str, str], Conversation] = {}
        self.messages: dict[str, ChatMessage] = {}
        self.media = MediaStore(url_ttl_seconds=media_url_ttl_seconds)
        self.templates = TemplateStore()
        self.faults = FaultInjector()
        self.stats = SendStats()
        self._conversation_ids = ConversationIds()
        self._outbound: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http = http
        self._webhook_slots = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
        self._owns_http = http is None

    # -- setup -------------------------------------------------------------------------

    def register_number(self, number: BusinessNumber) -> None:
        self.numbers[number.phone_number_id] = number
        self.templates.ensure_waba(number.waba_id)

    def set_faults(self, plan: FaultPlan) -> None:
        self.faults.set_plan(plan)

    def number(self, phone_number_id: str) -> BusinessNumber:
        try:
            return self.numbers[phone_number_id]
        except KeyError:
            raise ValueError(f"no business number {phone_number_id!r} is registered") from None

    def known_token(self, token: str) -> bool:
        return any(n.access_token == token for n in self.numbers.values())

    # -- customers and conversations --------------------------------------------------

    def add_customer(self, wa_id: str, name: str | None = None) -> str:
        wa_id = digits(wa_id)
        if not 8 <= len(wa_id) <= 15:
            raise ValueError("a wa_id has 8 to 15 digits")
        if name or wa_id not in self.customers:
            self.customers[wa_id] = name or f"+{wa_id}"
        return wa_id

    def resolve_recipient(self, recipient: str) -> str:
        """The wa_id WhatsApp delivers to: an existing customer, matched like Meta does for
        Brazilian numbers with or without the ninth digit, else a new customer."""
        if recipient in self.customers:
            return recipient
        variant = brazil_variant(recipient)
        if variant is not None and variant in self.customers:
            return variant
        return self.add_customer(recipient)

    def conversation(self, phone_number_id: str, wa_id: str) -> Conversation:
        key = (phone_number_id, wa_id)
        if key not in self.conversations:
            self.conversations[key] = Conversation(phone_number_id, wa_id)
        return self.conversations[key]

    def _record(self, message: ChatMessage) -> Conversation:
        conversation = self.conversation(message.phone_number_id, message.wa_id)
        conversation.messages.append(message)
        conversation.touch()
        self.messages[message.id] = message
        return conversation

    def save_media(
        self, phone_number_id: str, data: bytes, mime_type: str, filename: str | None
    ) -> MediaItem:
        return self.media.add(phone_number_id, data, mime_type, filename)

    # -- what the business sends (Graph API) ------------------------------------------

    async def handle_send(self, number: BusinessNumber, body: Any) -> dict[str, Any]:
        """``POST /{phone_number_id}/messages``: answer, or raise a :class:`GraphError`."""
        to = body.get("to") if isinstance(body, dict) else None
        self.stats.attempt(digits(to) if isinstance(to, str) else None)
        try:
            if isinstance(body, dict) and "status" in body:
                return self._business_reads(number, body)
            return await self._send(number, body)
        except GraphError as exc:
            self.stats.reject(
                digits(to) if isinstance(to, str) else None, exc.code, exc.http_status
            )
            raise

    async def _send(self, number: BusinessNumber, body: Any) -> dict[str, Any]:
        valid = validate_send(body, number=number, media=self.media, templates=self.templates)
        wa_id = self.resolve_recipient(valid.recipient)
        faults = self.faults.draw(wa_id)
        pnid = number.phone_number_id
        if faults.answer == "pair_limit" or self.faults.pair_rate_exceeded(pnid, wa_id):
            raise GraphError(
                131056,
                "Message failed to send because there were too many messages sent "
                "from this phone number to the same phone number in a short period of time.",
            )
        if faults.answer == "http_500":
            raise GraphError(131000, "An unknown error occurred.", http_status=500)
        if faults.answer == "rate_limit":
            raise GraphError(
                130429,
                "Message failed to send because there were too many messages sent "
                "from this phone number in a short period of time.",
                http_status=429,
            )
        if faults.answer != "timeout":
            return self._accept(number, wa_id, body, valid.template, faults)
        self.stats.timeouts += 1
        accepted = None
        if self.faults.plan.timeout_accepts:
            accepted = self._accept(number, wa_id, body, valid.template, faults)
        await asyncio.sleep(self.faults.plan.timeout_seconds)
        if accepted is None:
            raise GraphError(2, "Service temporarily unavailable.", http_status=503)
        return accepted

    def _accept(
        self,
        number: BusinessNumber,
        wa_id: str,
        body: dict[str, Any],
        template: MessageTemplate | None,
        faults: SendFaults,
    ) -> dict[str, Any]:
        pnid = number.phone_number_id
        conversation = self.conversation(pnid, wa_id)
        window_open = (
            conversation.last_customer_at is not None
            and time.time() - conversation.last_customer_at < WINDOW_SECONDS
        )
        failure: tuple[int, str] | None = None
        if faults.answer == "undeliverable":
            failure = (131026, "Message Undeliverable.")
        elif faults.answer == "reengagement" or (
            self.faults.plan.enforce_service_window and template is None and not window_open
        ):
            failure = (
                131047,
                "Message failed to send because more than 24 hours have passed since the "
                "customer last replied to this number.",
            )
        conversation.typing_until = 0.0  # Meta drops the typing indicator once we answer
        wamid = new_wamid(wa_id)
        message = ChatMessage(wamid, pnid, wa_id, "business", str(body.get("type", "text")), body)
        self._record(message)
        self.faults.record_pair_send(pnid, wa_id)
        self.stats.accept(wamid, wa_id, message.type, fingerprint(pnid, wa_id, body))
        self._outbound.append(
            {
                "phone_number_id": pnid,
                "wamid": wamid,
                "to": wa_id,
                "body": body,
                "received_at": time.time(),
            }
        )
        billing = billing_for(template.category if template else None, window_open)
        self._spawn(self._status_timeline(number, message, billing, faults, failure))
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": wa_id}],
            "messages": [{"id": wamid}],
        }

    def _business_reads(self, number: BusinessNumber, body: dict[str, Any]) -> dict[str, Any]:
        """The business marks a customer message read (and may show a typing indicator)."""
        if body.get("messaging_product") != "whatsapp":
            raise invalid_parameter("Param messaging_product must be 'whatsapp'.")
        if body.get("status") != "read":
            raise invalid_parameter("Param status must be 'read'.")
        target = self.messages.get(str(body.get("message_id", "")))
        if (
            target is None
            or target.sender != "customer"
            or target.phone_number_id != number.phone_number_id
        ):
            raise invalid_parameter(f"Message with id {body.get('message_id')!r} not found.")
        conversation = self.conversation(target.phone_number_id, target.wa_id)
        for message in conversation.messages:
            if message.sender == "customer" and message.timestamp <= target.timestamp:
                message.status = "read"
        if isinstance(body.get("typing_indicator"), dict):
            conversation.typing_until = time.time() + TYPING_SECONDS
        conversation.touch()
        return {"success": True}

    def outbound(self, phone_number_id: str | None = None) -> list[dict[str, Any]]:
        """What the business sent and the simulator accepted, in the order received."""
        return [
            dict(item)
            for item in self._outbound
            if phone_number_id is None or item["phone_number_id"] == phone_number_id
        ]

    # -- statuses ---------------------------------------------------------------------

    async def _status_timeline(
        self,
        number: BusinessNumber,
        message: ChatMessage,
        billing: Billing,
        faults: SendFaults,
        failure: tuple[int, str] | None,
    ) -> None:
        await asyncio.sleep(self.status_delay_seconds)
        if failure is not None:
            code, details = failure
            self.stats.failed_statuses_by_code[str(code)] += 1
            message.error = f"{code}: {details}"
            await self._emit(number, message, "failed", faults, billing, failure=failure)
            return
        await self._emit(number, message, "sent", faults, billing)
        await asyncio.sleep(self.status_delay_seconds)
        if faults.out_of_order_statuses:
            await self._emit(number, message, "read", faults, billing)
            await asyncio.sleep(self.status_delay_seconds)
            await self._emit(number, message, "delivered", faults, billing)
            return
        await self._emit(number, message, "delivered", faults, billing)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(message.read_requested.wait(), self.auto_read_seconds)
        if message.read_requested.is_set() or self.auto_read_seconds is not None:
            await self._emit(number, message, "read", faults, billing)

    async def _emit(
        self,
        number: BusinessNumber,
        message: ChatMessage,
        status: str,
        faults: SendFaults,
        billing: Billing,
        *,
        failure: tuple[int, str] | None = None,
    ) -> None:
        if STATUS_RANK[status] > STATUS_RANK.get(message.status, 0):
            message.status = status
            self.conversation(message.phone_number_id, message.wa_id).touch()
        priced = status in ("sent", "delivered")
        callback = message.payload.get("biz_opaque_callback_data")
        item = status_item(
            message.id,
            message.wa_id,
            status,
            billing=billing if priced else None,
            conversation=(
                self._conversation_ids.get(message.phone_number_id, message.wa_id, billing.category)
                if priced
                else None
            ),
            errors=[status_error(*failure)] if failure else None,
            callback_data=callback if isinstance(callback, str) else None,
        )
        payload = webhooks.envelope([(number.waba_id, [webhooks.statuses_change(number, [item])])])
        body = webhooks.encode(payload)
        delivered = await self._deliver(number.webhook_url, number.app_secret, body)
        if delivered and faults.duplicate_statuses:
            await self._deliver(number.webhook_url, number.app_secret, body)

    # -- what customers do ------------------------------------------------------------

    async def customer_sends(
        self,
        phone_number_id: str,
        wa_id: str,
        name: str,
        message: dict[str, Any],
        *,
        duplicate: bool = False,
    ) -> str:
        """A customer sends one message; returns its wamid once the webhook got a 200.

        ``message`` is a short form or a full Meta message object (see ``inbound.py``).
        ``duplicate`` delivers the same webhook a second time, as Meta sometimes does.
        Raises :class:`WebhookDeliveryError` when the retries are exhausted.
        """
        item = CustomerMessage(phone_number_id, wa_id, name, message)
        return (await self.customer_sends_batch([item], duplicate=duplicate))[0]

    async def customer_sends_batch(
        self, items: Sequence[CustomerMessage], *, duplicate: bool = False, wait: bool = True
    ) -> list[str]:
        """Several messages, possibly from several customers and numbers, in ONE delivery.

        Messages are grouped one entry per WABA and one change per (number, customer). All
        numbers must share the webhook URL and app secret. With ``wait=False`` the delivery
        (and its retries) happens in the background and failures are only counted.
        """
        if not items:
            raise ValueError("a delivery needs at least one message")
        built: list[tuple[BusinessNumber, str, dict[str, Any]]] = []
        for item in items:
            number = self.number(item.phone_number_id)
            wa_id = self.add_customer(item.wa_id, item.name)
            built.append(
                (
                    number,
                    wa_id,
                    build_customer_message(
                        item.message,
                        wa_id=wa_id,
                        wamid=new_wamid(wa_id),
                        number=number,
                        save_media=functools.partial(self.save_media, number.phone_number_id),
                    ),
                )
            )
        targets = {(number.webhook_url, number.app_secret) for number, _, _ in built}
        if len(targets) != 1:
            raise ValueError("one delivery goes to one webhook URL with one app secret")
        url, secret = targets.pop()
        entries: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
        for number, wa_id, meta in built:
            entries.setdefault(number.waba_id, {}).setdefault(
                (number.phone_number_id, wa_id), []
            ).append(meta)
            conversation = self._record(
                ChatMessage(
                    meta["id"],
                    number.phone_number_id,
                    wa_id,
                    "customer",
                    meta["type"],
                    meta,
                    status="delivered",
                )
            )
            conversation.last_customer_at = time.time()
            self.stats.inbound_messages += 1
        payload = webhooks.envelope(
            (
                waba_id,
                [
                    webhooks.messages_change(
                        self.numbers[pnid], [(wa_id, self.customers[wa_id])], metas
                    )
                    for (pnid, wa_id), metas in changes.items()
                ],
            )
            for waba_id, changes in entries.items()
        )
        wamids = [str(meta["id"]) for _, _, meta in built]
        delivery = self._deliver_customer_messages(
            url, secret, webhooks.encode(payload), wamids, duplicate
        )
        if wait:
            await delivery
        else:
            self._spawn(_suppress_delivery_error(delivery))
        return wamids

    async def _deliver_customer_messages(
        self, url: str, secret: str, body: bytes, wamids: list[str], duplicate: bool
    ) -> None:
        if not await self._deliver(url, secret, body):
            raise WebhookDeliveryError(url, wamids)
        if duplicate:
            await self._deliver(url, secret, body)

    def customer_reads(self, phone_number_id: str, wa_id: str) -> int:
        """The customer opens the chat: every business message not yet read gets read."""
        count = 0
        for message in self.conversation(phone_number_id, wa_id).messages:
            if (
                message.sender == "business"
                and message.status not in ("read", "failed")
                and not message.read_requested.is_set()
            ):
                message.read_requested.set()
                count += 1
        return count

    # -- templates ----------------------------------------------------------------------

    def create_template(self, waba_id: str, body: Any) -> MessageTemplate:
        template = self.templates.create(waba_id, body)
        self._spawn(self._review_template(template))
        return template

    async def _review_template(self, template: MessageTemplate) -> None:
        await asyncio.sleep(self.template_review_seconds)
        self.templates.review(template)
        change = webhooks.template_status_change(
            template.id,
            template.name,
            template.language,
            template.status,
            template.rejected_reason,
        )
        body = webhooks.encode(
            webhooks.envelope([(template.waba_id, [change])], time=int(time.time()))
        )
        targets = {
            (n.webhook_url, n.app_secret)
            for n in self.numbers.values()
            if n.waba_id == template.waba_id
        }
        for url, secret in sorted(targets):
            await self._deliver(url, secret, body)

    # -- plumbing -----------------------------------------------------------------------

    async def _deliver(self, url: str, app_secret: str, body: bytes) -> bool:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.webhook_timeout_seconds)

        def count(outcome: int | str, _seconds: float) -> None:
            if outcome != 200:
                self.stats.webhook_attempts_failed += 1

        delivered = await webhooks.post_with_retries(
            self._http,
            url,
            body,
            app_secret,
            retry_delays=self.webhook_retry_delays,
            retry_budget_seconds=self.webhook_retry_budget_seconds,
            on_attempt=count,
            slots=self._webhook_slots,
        )
        if delivered:
            self.stats.webhooks_delivered += 1
        else:
            self.stats.webhooks_abandoned += 1
        return delivered

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def state(self) -> dict[str, Any]:
        return {
            **self.stats.to_dict(),
            "faults": self.faults.plan.to_dict(),
            "numbers": len(self.numbers),
            "customers": len(self.customers),
            "pending_tasks": len(self._tasks),
        }

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None


async def _suppress_delivery_error(delivery: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(WebhookDeliveryError):
        await delivery


def create_simulator_app(sim: Simulator) -> FastAPI:
    app = FastAPI(title="WhatsApp Cloud API simulator", docs_url=None, redoc_url=None)

    @app.exception_handler(GraphError)
    async def graph_error(_request: Request, exc: GraphError) -> JSONResponse:
        return exc.response()

    app.include_router(graph_router(sim))
    app.include_router(media_download_router(sim))
    app.include_router(control_router(sim))
    app.include_router(page_router(sim))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
