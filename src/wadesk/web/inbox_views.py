"""The agent inbox: conversation list, thread, composer, header actions, contact panel.

Full pages (``/inbox``, ``/inbox/c/{id}``) and the HTML fragments the browser swaps in (htmx and
``static/js/inbox.js``): list pages, one list row, a thread, older/newer messages, one message,
the thread header. Sending goes through the JSON API (``static/js/outbox.js``: Idempotency-Key,
offline queue); header actions post here (CSRF form field) and run the domain actions.
Everything is limited to the inboxes the person may see: another inbox's conversation is a 404.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.accounts.access import SessionAuth
from wadesk.contacts.actions import ContactConflict, do_update_contact
from wadesk.contacts.models import Contact
from wadesk.contacts.phone import InvalidPhone
from wadesk.conversations.actions import Keep, SendRefused, do_update_conversation
from wadesk.conversations.models import Conversation, Message
from wadesk.deps import RuntimeDep, SessionDep
from wadesk.errors import ApiError
from wadesk.pagination import decode_cursor, encode_cursor
from wadesk.web import inbox_features
from wadesk.web.i18n import gettext as _
from wadesk.web.inbox_queries import (
    FOLDERS,
    PRIORITIES,
    STATUSES,
    ListFilters,
    Row,
    approved_templates,
    assignable_people,
    contact_panel,
    filter_choices,
    folder_counts,
    list_rows,
    may_be_assigned,
    mentionable_people,
    row_if_matching,
    thread_messages,
    visible_conversation,
)
from wadesk.web.pages import PageError, env, redirect, render, signed_in

router = APIRouter(include_in_schema=False)

Reading = Annotated[SessionAuth, signed_in(permission="conversations.read")]
Writing = Annotated[SessionAuth, signed_in(permission="conversations.write")]
EditingContacts = Annotated[SessionAuth, signed_in(permission="contacts.write")]
PAGE_SIZE = 30
THREAD_PAGE = 40
REACTIONS = ("👍", "❤️", "😂", "😮", "😢", "🙏")
# The composer's emoji panel: a short list an agent actually uses, by category (no library).
EMOJI = (
    ("smileys", "😀 😃 😄 😁 😊 🙂 😉 😍 😘 😂 🤣 😅 😇 🤗 🤔 😐 😮 😢 😭 😡"),
    ("gestures", "👍 👎 👏 🙌 🙏 👋 👌 ✌️ 🤝 💪"),
    ("hearts", "❤️ 🧡 💛 💚 💙 💜 🖤 💯 ✨ 🎉"),
    ("objects", "📦 🚚 📅 ⏰ 📞 💬 📧 🛒 💳 🧾"),
    ("symbols", "✅ ❌ ⚠️ ❓ ❗ ⭐ 🔥 👀 🚀 ➡️"),
)


# ---------------------------------------------------------------- formatting helpers


def _human_size(size: int | None) -> str:
    if not size:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def _clock(value: datetime | None) -> str:
    """A short UTC fallback; the browser rewrites it in the person's time zone and language."""
    if value is None:
        return ""
    value = value.astimezone(UTC)
    now = datetime.now(UTC)
    if value.date() == now.date():
        return value.strftime("%H:%M")
    if now - value < timedelta(days=7):
        return value.strftime("%a")
    return value.strftime("%d %b")


def _map_link(content: dict[str, Any]) -> str:
    lat, lon = content.get("latitude"), content.get("longitude")
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"


def _contact_cards(content: dict[str, Any]) -> list[dict[str, Any]]:
    cards = []
    for raw in content.get("contacts") or []:
        if not isinstance(raw, dict):
            continue
        name: dict[str, Any] = raw["name"] if isinstance(raw.get("name"), dict) else {}
        phones = [
            str(p.get("phone") or p.get("wa_id") or "")
            for p in raw.get("phones") or []
            if isinstance(p, dict)
        ]
        emails = [str(e.get("email", "")) for e in raw.get("emails") or [] if isinstance(e, dict)]
        cards.append(
            {
                "name": str(name.get("formatted_name") or name.get("first_name") or ""),
                "phones": [p for p in phones if p],
                "emails": [e for e in emails if e],
            }
        )
    return cards


def _window(conversation: Conversation, hours: int) -> dict[str, Any]:
    if conversation.last_customer_message_at is None:
        return {"state": "closed", "closes_at": None}
    closes = conversation.last_customer_message_at + timedelta(hours=hours)
    left = (closes - datetime.now(UTC)).total_seconds()
    if left <= 0:
        return {"state": "closed", "closes_at": closes}
    return {"state": "closing" if left < 3600 else "open", "closes_at": closes}


env.filters["human_size"] = _human_size
env.filters["iso"] = _iso
env.filters["clock"] = _clock
env.globals["map_link"] = _map_link
env.globals["contact_cards"] = _contact_cards
env.globals["REACTIONS"] = REACTIONS
env.globals["EMOJI"] = EMOJI


# ---------------------------------------------------------------- request parsing


FolderQ = Annotated[str | None, Query(max_length=20)]
StatusQ = Annotated[str | None, Query(max_length=20)]
InboxQ = Annotated[str | None, Query(max_length=20)]
LabelQ = Annotated[str | None, Query(max_length=60)]
PriorityQ = Annotated[str | None, Query(max_length=20)]
SearchQ = Annotated[str | None, Query(max_length=200)]


def _filters(
    folder: FolderQ = None,
    status: StatusQ = None,
    inbox: InboxQ = None,
    label: LabelQ = None,
    priority: PriorityQ = None,
    q: SearchQ = None,
) -> ListFilters:
    """The list's filters from the query string (a dependency of every list/page route)."""
    inbox_id = int(inbox) if inbox and inbox.isdigit() and len(inbox) < 19 else None
    return ListFilters(
        folder=folder if folder in FOLDERS else "mine",
        status=status if status in STATUSES else "open",
        inbox_id=inbox_id,
        label=(label or "").replace("\x00", "")[:60] or None,
        priority=priority if priority in PRIORITIES else None,
        q=(q or "").replace("\x00", "").strip()[:200] or None,
    )


Filters = Annotated[ListFilters, Depends(_filters)]


async def _conversation_or_404(
    session: AsyncSession, auth: SessionAuth, conversation_id: int
) -> Conversation:
    conversation = (
        await visible_conversation(session, auth.principal, conversation_id)
        if 0 < conversation_id < 2**63
        else None
    )
    if conversation is None:
        raise PageError(404, _("Not found"), _("There is no such conversation in your inboxes."))
    return conversation


def _fragment(name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    html = env.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- list


async def _list_context(
    session: AsyncSession, auth: SessionAuth, filters: ListFilters, cursor: str | None
) -> dict[str, Any]:
    after = None
    if cursor:
        try:
            at, last_id = decode_cursor(cursor, (datetime, int))
        except ApiError as exc:
            raise PageError(400, _("Bad request"), _("That page link is not valid.")) from exc
        assert isinstance(at, datetime) and isinstance(last_id, int)
        after = (at, last_id)
    rows = await list_rows(session, auth.principal, filters, after=after, limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    last = rows[-1].conversation if rows else None
    next_cursor = encode_cursor(last.last_activity_at, last.id) if more and last else None
    return {"rows": rows, "next_cursor": next_cursor, "filters": filters, "auth": auth}


@router.get("/inbox")
async def inbox_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Reading,
    filters: Filters,
) -> Response:
    return await _page(request, session, runtime, auth, filters, None)


@router.get("/inbox/c/{conversation_id}")
async def conversation_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Reading,
    conversation_id: int,
    filters: Filters,
) -> Response:
    conversation = await _conversation_or_404(session, auth, conversation_id)
    return await _page(request, session, runtime, auth, filters, conversation)


async def _page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: SessionAuth,
    filters: ListFilters,
    conversation: Conversation | None,
) -> Response:
    last_event_id = await _current_event_id(session)  # before reading what the page shows
    context = await _list_context(session, auth, filters, None)
    inboxes, labels = await filter_choices(session, auth.principal)
    context.update(
        counts=await folder_counts(session, auth.principal, filters),
        inboxes=inboxes,
        labels=labels,
        last_event_id=last_event_id,
        conversation=None,
        features=inbox_features.available(request.app),
    )
    if conversation is not None:
        context.update(await _thread_context(request, session, runtime, auth, conversation))
    context.pop("auth", None)
    return render(request, "inbox/page.html", context, auth=auth)


async def _current_event_id(session: AsyncSession) -> int:
    """The event log position this page shows (the browser resumes the live stream from it)."""
    try:
        from wadesk.realtime.queries import current_event_id
    except ImportError:
        return 0
    return int(await current_event_id(session))


@router.get("/inbox/list")
async def list_fragment(
    session: SessionDep,
    auth: Reading,
    filters: Filters,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    context = await _list_context(session, auth, filters, cursor)
    context["cursor_page"] = cursor is not None
    if cursor is None:
        context["counts"] = await folder_counts(session, auth.principal, filters)
    return _fragment("inbox/_list.html", context)


@router.get("/inbox/row/{conversation_id}")
async def row_fragment(
    session: SessionDep,
    auth: Reading,
    conversation_id: int,
    filters: Filters,
) -> Response:
    """One list row if the conversation is in the current list (else an empty 200: remove it)."""
    await _conversation_or_404(session, auth, conversation_id)
    row: Row | None = await row_if_matching(session, auth.principal, filters, conversation_id)
    counts = await folder_counts(session, auth.principal, filters)
    return _fragment(
        "inbox/_row_update.html", {"row": row, "filters": filters, "auth": auth, "counts": counts}
    )


# ---------------------------------------------------------------- thread


async def _thread_context(
    request: Request,
    session: AsyncSession,
    runtime: RuntimeDep,
    auth: SessionAuth,
    conversation: Conversation,
) -> dict[str, Any]:
    thread = await thread_messages(session, conversation, limit=THREAD_PAGE, scope=_scope(auth))
    panel = await contact_panel(session, auth.principal, conversation)
    rows = await _rows(session, conversation)
    features = inbox_features.available(request.app)
    window = _window(conversation, runtime.settings.service_window_hours)
    templates = (
        await approved_templates(session, conversation.inbox_id)
        if "templates" in features and window["state"] != "open"
        else []
    )
    return {
        "templates": templates,
        "conversation": conversation,
        "row": rows,
        "thread": thread,
        "panel": panel,
        "people": await assignable_people(session, conversation.inbox_id),
        "window": window,
        "window_hours": runtime.settings.service_window_hours,
        "features": features,
        "auth": auth,
    }


async def _rows(session: AsyncSession, conversation: Conversation) -> Row:
    from wadesk.web.inbox_queries import rows_for

    return (await rows_for(session, [conversation]))[0]


def _scope(auth: SessionAuth) -> str:
    actor = auth.principal.actor
    return f"{actor.type}:{actor.id}"


@router.get("/inbox/c/{conversation_id}/thread")
async def thread_fragment(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: Reading, conversation_id: int
) -> Response:
    conversation = await _conversation_or_404(session, auth, conversation_id)
    context = await _thread_context(request, session, runtime, auth, conversation)
    return _fragment("inbox/_thread.html", context)


@router.get("/inbox/c/{conversation_id}/header")
async def header_fragment(
    request: Request, session: SessionDep, runtime: RuntimeDep, auth: Reading, conversation_id: int
) -> Response:
    conversation = await _conversation_or_404(session, auth, conversation_id)
    context = await _thread_context(request, session, runtime, auth, conversation)
    return _fragment("inbox/_chrome.html", context)


@router.get("/inbox/c/{conversation_id}/messages")
async def messages_fragment(
    session: SessionDep,
    auth: Reading,
    conversation_id: int,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    ids: Annotated[str | None, Query(max_length=4000, pattern=r"^[0-9,]+$")] = None,
) -> Response:
    """Older messages (``before``), newer ones (``after``: live), or some by id (``ids``: their
    status changed)."""
    conversation = await _conversation_or_404(session, auth, conversation_id)
    thread = await thread_messages(
        session,
        conversation,
        before_id=before,
        after_id=after,
        only_ids=[int(i) for i in ids.split(",") if 0 < len(i) < 19][:200] if ids else None,
        limit=THREAD_PAGE,
        scope=_scope(auth),
    )
    return _fragment(
        "inbox/_messages.html",
        {"thread": thread, "conversation": conversation, "auth": auth, "live": after is not None},
    )


@router.get("/inbox/m/{message_id}")
async def message_fragment(session: SessionDep, auth: Reading, message_id: int) -> Response:
    message = await session.get(Message, message_id) if 0 < message_id < 2**63 else None
    if message is None or not auth.principal.can_see_inbox(message.inbox_id):
        raise PageError(404, _("Not found"), _("There is no such message in your inboxes."))
    conversation = await _conversation_or_404(session, auth, message.conversation_id)
    thread = await thread_messages(
        session, conversation, only_ids=[message.id], limit=1, scope=_scope(auth)
    )
    return _fragment(
        "inbox/_messages.html",
        {"thread": thread, "conversation": conversation, "auth": auth, "live": False},
    )


# ---------------------------------------------------------------- header actions

ACTIONS = (
    "assign_me",
    "unassign",
    "assign",
    "resolve",
    "reopen",
    "pending",
    "snooze",
    "priority",
    "labels",
)


@router.post("/inbox/c/{conversation_id}/update")
async def update_conversation(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    auth: Writing,
    conversation_id: int,
    action: Annotated[str, Form(max_length=20)] = "",
    assignee_id: Annotated[str, Form(max_length=20)] = "",
    snooze_until: Annotated[str, Form(max_length=40)] = "",
    tz_offset: Annotated[str, Form(max_length=6)] = "0",
    priority: Annotated[str, Form(max_length=20)] = "",
    labels: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    conversation = await _conversation_or_404(session, auth, conversation_id)
    error: str | None = None
    change: dict[str, Any] = {}
    if action not in ACTIONS:
        error = _("Unknown action.")
    elif action == "assign_me":
        change["assignee_id"] = auth.principal.user_id
    elif action == "unassign":
        change["assignee_id"] = None
    elif action == "assign":
        if not assignee_id.isdigit() or not await may_be_assigned(
            session, int(assignee_id), conversation.inbox_id
        ):
            error = _("That person cannot be assigned conversations of this inbox.")
        else:
            change["assignee_id"] = int(assignee_id)
    elif action == "resolve":
        change["status"] = "resolved"
    elif action in ("reopen", "pending"):
        change["status"] = "open" if action == "reopen" else "pending"
    elif action == "snooze":
        until = _parse_local(snooze_until, tz_offset)
        if until is None or until <= datetime.now(UTC):
            error = _("Choose a time in the future to snooze until.")
        else:
            change.update(status="snoozed", snoozed_until=until)
    elif action == "priority":
        if priority not in ("none", *PRIORITIES):
            error = _("Unknown priority.")
        else:
            change["priority"] = priority
    elif action == "labels":
        names = [n.strip()[:60] for n in labels.replace("\x00", "").split(",") if n.strip()]
        change["labels"] = names[:50]
    if error is None:
        try:
            await do_update_conversation(
                session,
                actor=auth.principal.actor,
                conversation=conversation,
                status=change.get("status"),
                assignee_id=change.get("assignee_id", Keep.KEEP),
                priority=change.get("priority"),
                snoozed_until=change.get("snoozed_until"),
                labels=change.get("labels"),
            )
        except SendRefused as exc:
            error = str(exc)
    # Commit before rendering: a change that drained the queue holds routing's lock until then.
    await session.commit()
    if request.headers.get("hx-request") != "true":
        if error:
            raise PageError(409, _("Not changed"), error)
        return redirect(f"/inbox/c/{conversation.id}")
    context = await _thread_context(request, session, runtime, auth, conversation)
    context["error"] = error
    return _fragment("inbox/_chrome.html", context, status=200)


def _parse_local(value: str, tz_offset: str) -> datetime | None:
    """A ``datetime-local`` value and the browser's ``getTimezoneOffset()`` (minutes)."""
    try:
        local = datetime.fromisoformat(value)
        offset = int(tz_offset or "0")
    except ValueError:
        return None
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    if not -900 <= offset <= 900:
        return None
    return (local + timedelta(minutes=offset)).replace(tzinfo=UTC)


# ---------------------------------------------------------------- contact panel: editing

ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ATTRIBUTE_VALUE_MAX = 500
ATTRIBUTES_MAX = 50
# A number as a CRM would push it: canonical digits only, so "007" or "+55 11..." stay text.
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?")
_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


def attribute_text(value: Any) -> str:
    """How an attribute value is shown in the edit form (and recognised there as unchanged)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _typed(text: str) -> str | int | float:
    if NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    return text


env.filters["attribute_text"] = attribute_text


@dataclass(slots=True)
class AttributeRow:
    key: str
    value: str
    original: str = ""
    removed: bool = False


@dataclass(slots=True)
class ContactForm:
    """What the edit form shows: the contact's values, or what was typed when it was refused."""

    name: str
    email: str
    rows: list[AttributeRow]
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ContactEdit:
    changes: dict[str, Any]
    remove: list[str]


def contact_form_of(contact: Contact) -> ContactForm:
    rows = [
        AttributeRow(key=str(k), value=attribute_text(v), original=str(k))
        for k, v in (contact.attributes or {}).items()
    ]
    return ContactForm(name=contact.name or "", email=contact.email or "", rows=rows)


def read_contact_form(form: Any) -> ContactForm:
    """The submitted form as typed (``attr_key``/``attr_value``/``attr_original`` in step)."""
    keys = [str(v) for v in form.getlist("attr_key")]
    values = [str(v) for v in form.getlist("attr_value")]
    originals = [str(v) for v in form.getlist("attr_original")]
    removed = {str(v) for v in form.getlist("remove")}
    if not len(keys) == len(values) == len(originals):
        raise PageError(400, _("Bad request"), _("The attribute fields do not match up."))
    if len(keys) > 4 * ATTRIBUTES_MAX:
        raise PageError(413, _("Too many attributes"), _("The form holds too many attributes."))
    rows = [
        AttributeRow(
            key=k.replace("\x00", "")[:200],
            value=v.replace("\x00", "")[:2000],
            original=o[:200],
            removed=bool(o) and o in removed,
        )
        for k, v, o in zip(keys, values, originals, strict=True)
    ]
    return ContactForm(
        name=str(form.get("name") or "").replace("\x00", "")[:400],
        email=str(form.get("email") or "").replace("\x00", "")[:400],
        rows=rows,
    )


def validate_contact_form(submitted: ContactForm, contact: Contact) -> ContactEdit:
    """The change the form asks for; problems go to ``submitted.errors`` (nothing changes then).

    Only what was changed is checked and typed: a value left as shown keeps its stored type
    (a number, a boolean, a value from the API longer than the form allows).
    """
    errors = submitted.errors
    changes: dict[str, Any] = {}
    name = submitted.name.strip()
    if len(name) > 200:
        errors.append(_("The name can be at most 200 characters."))
    elif (name or None) != contact.name:
        changes["name"] = name or None
    email = submitted.email.strip()
    if email and email != (contact.email or ""):
        try:
            email = _EMAIL.validate_python(email)
        except ValidationError:
            errors.append(_("“%(email)s” is not a valid e-mail address.") % {"email": email[:80]})
    if (email or None) != contact.email and not errors:
        changes["email"] = email or None

    current: dict[str, Any] = dict(contact.attributes or {})
    remove: set[str] = set()
    updates: dict[str, Any] = {}
    seen: set[str] = set()
    for row in submitted.rows:
        key, value, original = row.key.strip(), row.value.strip(), row.original
        if row.removed:
            if original in current:
                remove.add(original)
            continue
        if not key and not value and not original:
            continue  # the empty row for a new attribute
        if not key:
            errors.append(_("Every attribute needs a name."))
            continue
        if key in seen:
            errors.append(_("The attribute “%(key)s” appears twice.") % {"key": key[:64]})
            continue
        seen.add(key)
        renamed = key != original
        if renamed and not ATTRIBUTE_KEY.fullmatch(key):
            errors.append(
                _(
                    "“%(key)s” is not a valid attribute name: use up to 64 letters, digits,"
                    " “_”, “-” or “.”."
                )
                % {"key": key[:64]}
            )
            continue
        if renamed and original in current:
            remove.add(original)
        elif not renamed and key in current and value == attribute_text(current[key]):
            continue  # unchanged: keeps its stored type
        if len(value) > ATTRIBUTE_VALUE_MAX:
            errors.append(
                _("The value of “%(key)s” is too long (at most %(max)d characters).")
                % {"key": key, "max": ATTRIBUTE_VALUE_MAX}
            )
            continue
        updates[key] = _typed(value)
    remove -= set(updates)
    total = len((set(current) - remove) | set(updates))
    if total > ATTRIBUTES_MAX and total > len(current):
        errors.append(_("A contact can have at most %(max)d attributes.") % {"max": ATTRIBUTES_MAX})
    if updates:
        changes["attributes"] = updates
    return ContactEdit(changes=changes, remove=sorted(remove))


async def _contact_or_404(session: AsyncSession, conversation: Conversation) -> Contact:
    contact = await session.get(Contact, conversation.contact_id)
    if contact is None:
        raise PageError(404, _("Not found"), _("This conversation has no contact."))
    return contact


async def _panel_response(
    session: AsyncSession,
    auth: SessionAuth,
    conversation: Conversation,
    contact_form: ContactForm | None = None,
    status: int = 200,
    saved: bool = False,
) -> HTMLResponse:
    context = {
        "conversation": conversation,
        "panel": await contact_panel(session, auth.principal, conversation),
        "row": await _rows(session, conversation),
        "auth": auth,
        "contact_form": contact_form,
        "saved": saved,
    }
    return _fragment("inbox/_contact.html", context, status=status)


@router.get("/inbox/c/{conversation_id}/contact")
async def contact_fragment(
    session: SessionDep, auth: Reading, conversation_id: int, edit: bool = False
) -> Response:
    """The contact panel, or (``edit=1``) its edit form."""
    conversation = await _conversation_or_404(session, auth, conversation_id)
    form = None
    if edit:
        if not auth.principal.can("contacts.write"):
            raise PageError(403, _("Not allowed"), _("Your role does not let you edit contacts."))
        form = contact_form_of(await _contact_or_404(session, conversation))
    return await _panel_response(session, auth, conversation, form)


@router.post("/inbox/c/{conversation_id}/contact")
async def update_contact(
    request: Request, session: SessionDep, auth: EditingContacts, conversation_id: int
) -> Response:
    """Save the contact panel's form (name, e-mail, attributes) through ``do_update_contact``.

    A refused form comes back (422) with the messages and everything as typed."""
    conversation = await _conversation_or_404(session, auth, conversation_id)
    contact = await _contact_or_404(session, conversation)
    submitted = read_contact_form(await request.form())
    edit = validate_contact_form(submitted, contact)
    if not submitted.errors and (edit.changes or edit.remove):
        try:
            await do_update_contact(
                session,
                actor=auth.principal.actor,
                contact=contact,
                changes=edit.changes,
                remove_attributes=edit.remove,
                inbox_id=conversation.inbox_id,
            )
        except (ContactConflict, InvalidPhone) as exc:
            submitted.errors.append(str(exc))
    htmx = request.headers.get("hx-request") == "true"
    if submitted.errors:
        if not htmx:
            raise PageError(422, _("Not saved"), " ".join(submitted.errors))
        return await _panel_response(session, auth, conversation, submitted, status=422)
    if not htmx:
        return redirect(f"/inbox/c/{conversation.id}")
    return await _panel_response(session, auth, conversation, saved=True)


# ---------------------------------------------------------------- @mentions in notes


@router.get("/inbox/c/{conversation_id}/mentionable")
async def mentionable(
    session: SessionDep,
    auth: Reading,
    conversation_id: int,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """People who may see this conversation's inbox, with the ``@handle`` a note resolves."""
    conversation = await _conversation_or_404(session, auth, conversation_id)
    people = await mentionable_people(
        session,
        conversation.inbox_id,
        query=q.replace("\x00", ""),
        exclude_user_id=auth.principal.user_id,
        limit=8,
    )
    return JSONResponse(
        {"items": [{"id": p.id, "name": p.name, "handle": p.handle} for p in people]},
        headers={"Cache-Control": "no-store"},
    )
