"""Which link (or Click-to-WhatsApp ad) started a conversation.

Called by the inbound path, in its transaction, with the inbound messages it has just stored.
A conversation is attributed once: when every inbound message it has arrived in this call (it
is new) and it has no source yet. Its messages are read in order; the first one that names a
link decides:

1. a reference code, as the link put it in the prefilled text ("(ref: XMAS24)"), even if the
   customer changed the rest of the text, the label or the case ("ref xmas24");
2. a code alone in the text (letters and digits, as generated: "Oi! K7M2XP");
3. the ad of a Click-to-WhatsApp ``referral`` (its ``source_id``), when a link names that ad;
4. the prefilled message itself, when the customer deleted the code but kept the message and
   exactly one link of the inbox has it.

An ad referral that no link names still becomes the conversation's source (type "ad").
The contact keeps its first source and its latest one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wadesk.contacts.models import Contact
from wadesk.conversations.models import Conversation, Message
from wadesk.db import insert_for, queue_event, utcnow
from wadesk.links.models import Link, LinkAttribution

# "(ref: XMAS24)", "(código: XMAS24)", "(संदर्भ: XMAS24)"; any label the link used.
LABELLED_RE = re.compile(r"\(\s*[^():\n]{1,30}?\s*[:\uff1a]\s*([A-Za-z0-9]{3,16})\s*\)")
# "ref XMAS24", "REF: xmas24", "ref#XMAS24" (parentheses removed by the customer). A separator
# is required: "REFVC8" or "REFUND10" is a code of its own, not "ref" + "VC8".
REF_RE = re.compile(
    r"(?<![A-Za-z0-9])ref(?:\s+|\s*[:#\-]\s*)([A-Za-z0-9]{3,16})(?![A-Za-z0-9])", re.I
)
# A bare code: upper-case letters and digits, with both (as generated codes always have).
BARE_RE = re.compile(
    r"(?<![A-Za-z0-9])(?=[A-Z0-9]*[0-9])(?=[A-Z0-9]*[A-Z])([A-Z0-9]{4,16})(?![A-Za-z0-9])"
)
MIN_MESSAGE_MATCH = 12  # characters: shorter prefilled messages ("Hi") prove nothing

# (conversation id, contact id, text, referral) of each stored inbound message, in order.
InboundItem = tuple[int, int, str | None, dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class _Match:
    link: Link | None
    matched_by: str  # ref | code | referral | text
    referral: dict[str, Any] | None


def ref_candidates(text: str) -> list[tuple[str, bool]]:
    """Reference codes named in a text, most explicit first, upper-case, each once; with
    whether it was marked as a reference (a label or "ref") or stood alone."""
    found: dict[str, bool] = {}
    for pattern, explicit in ((LABELLED_RE, True), (REF_RE, True), (BARE_RE, False)):
        for match in pattern.finditer(text):
            found.setdefault(match.group(1).upper(), explicit)
    return list(found.items())


def _normalized(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


async def attribute_new_conversations(
    session: AsyncSession, inbox_id: int, items: Sequence[InboundItem]
) -> int:
    """Set the source of the conversations these stored inbound messages opened, and their
    contacts' first/last source. Returns how many conversations were attributed."""
    if not items:
        return 0
    if not any(referral for *_, referral in items) and not await _any_link(session, inbox_id):
        return 0  # nothing could match: spare a burst of new customers the work below
    by_conversation: dict[int, list[InboundItem]] = {}
    for item in items:
        by_conversation.setdefault(item[0], []).append(item)
    new = await _new_conversations(session, by_conversation)
    if not new:
        return 0
    matches: dict[int, _Match] = {}
    codes = {
        code
        for cid in new
        for _, _, text, _ in by_conversation[cid]
        if text
        for code, _ in ref_candidates(text)
    }
    by_code = await _links_by(session, Link.ref_code, codes)
    ad_ids = {
        str(referral["source_id"])[:64]
        for cid in new
        for _, _, _, referral in by_conversation[cid]
        if referral and referral.get("source_id")
    }
    by_ad = await _links_by(session, Link.ad_source_id, ad_ids)
    unmatched: list[int] = []
    for cid in new:
        match = _match(by_conversation[cid], inbox_id, by_code, by_ad)
        if match is None:
            unmatched.append(cid)
        else:
            matches[cid] = match
    if unmatched:
        for cid, link in (await _by_message(session, inbox_id, unmatched, by_conversation)).items():
            referral = next((r for _, _, _, r in by_conversation[cid] if r), None)
            matches[cid] = _Match(link, "text", referral)
    if not matches:
        return 0
    await _write(session, inbox_id, new, by_conversation, matches)
    return len(matches)


async def _any_link(session: AsyncSession, inbox_id: int) -> bool:
    found = await session.scalar(
        select(Link.id).where(or_(Link.inbox_id.is_(None), Link.inbox_id == inbox_id)).limit(1)
    )
    return found is not None


async def _new_conversations(
    session: AsyncSession, by_conversation: dict[int, list[InboundItem]]
) -> list[int]:
    """Conversations without a source whose every inbound message is among the items."""
    ids = sorted(by_conversation)
    sources = await session.execute(
        select(Conversation.id, Conversation.source).where(Conversation.id.in_(ids))
    )
    unset = {int(cid) for cid, source in sources.tuples() if not source}
    if not unset:
        return []
    counts = await session.execute(
        select(Message.conversation_id, func.count())
        .where(Message.conversation_id.in_(sorted(unset)), Message.direction == "in")
        .group_by(Message.conversation_id)
    )
    inbound = {int(cid): int(n) for cid, n in counts.tuples()}
    return [cid for cid in ids if cid in unset and inbound.get(cid, 0) <= len(by_conversation[cid])]


async def _links_by(session: AsyncSession, column: Any, values: set[str]) -> dict[str, Link]:
    if not values:
        return {}
    rows = await session.scalars(select(Link).where(column.in_(sorted(values))))
    return {str(getattr(link, column.key)): link for link in rows.all()}


def _serves(link: Link, inbox_id: int) -> bool:
    return link.inbox_id is None or link.inbox_id == inbox_id


def _match(
    items: list[InboundItem], inbox_id: int, by_code: dict[str, Link], by_ad: dict[str, Link]
) -> _Match | None:
    referral = next((r for _, _, _, r in items if r), None)
    for _, _, text, _ in items:
        if not text:
            continue
        for code, explicit in ref_candidates(text):
            link = by_code.get(code)
            if link is not None and _serves(link, inbox_id):
                return _Match(link, "ref" if explicit else "code", referral)
    if referral is not None:
        ad = str(referral.get("source_id") or "")[:64]
        link = by_ad.get(ad)
        return _Match(
            link if link is not None and _serves(link, inbox_id) else None, "referral", referral
        )
    return None


async def _by_message(
    session: AsyncSession,
    inbox_id: int,
    conversation_ids: list[int],
    by_conversation: dict[int, list[InboundItem]],
) -> dict[int, Link]:
    """The link whose prefilled message the customer sent without its code (one link only)."""
    texts = {
        cid: [_normalized(t) for _, _, t, _ in by_conversation[cid] if t]
        for cid in conversation_ids
    }
    if not any(texts.values()):
        return {}
    links = (
        await session.scalars(
            select(Link).where(
                or_(Link.inbox_id.is_(None), Link.inbox_id == inbox_id),
                func.length(Link.message) >= MIN_MESSAGE_MATCH,
            )
        )
    ).all()
    candidates = [(_normalized(link.message), link) for link in links]
    found: dict[int, Link] = {}
    for cid, normalized_texts in texts.items():
        for text in normalized_texts:
            hits = {link.id: link for message, link in candidates if message and message in text}
            if len(hits) == 1:
                found[cid] = next(iter(hits.values()))
                break
    return found


def source_of(match: _Match, at: str) -> dict[str, Any]:
    source: dict[str, Any] = {"type": "ad" if match.link is None else "link", "at": at}
    if match.link is not None:
        link = match.link
        source.update(
            link_id=link.id,
            slug=link.slug,
            ref_code=link.ref_code,
            name=link.name,
            campaign=link.campaign,
            source=link.source,
            matched_by=match.matched_by,
        )
    if match.referral:
        referral = match.referral
        source["ad"] = {
            key: str(referral[key])[:500]
            for key in ("source_id", "source_type", "source_url", "headline", "body", "ctwa_clid")
            if referral.get(key)
        }
    return source


async def _write(
    session: AsyncSession,
    inbox_id: int,
    new: list[int],
    by_conversation: dict[int, list[InboundItem]],
    matches: dict[int, _Match],
) -> None:
    now = utcnow()
    at = now.isoformat()
    attributions: list[dict[str, Any]] = []
    for cid in new:
        match = matches.get(cid)
        if match is None:
            continue
        contact_id = by_conversation[cid][0][1]
        source = source_of(match, at)
        await session.execute(
            update(Conversation)
            .where(Conversation.id == cid)
            .values(source=source)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Contact)
            .where(Contact.id == contact_id, Contact.first_source.is_(None))
            .values(first_source=source)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Contact)
            .where(Contact.id == contact_id)
            .values(last_source=source)
            .execution_options(synchronize_session=False)
        )
        if match.link is not None:
            ad = (match.referral or {}).get("source_id")
            attributions.append(
                {
                    "link_id": match.link.id,
                    "conversation_id": cid,
                    "contact_id": contact_id,
                    "inbox_id": inbox_id,
                    "matched_by": match.matched_by,
                    "attributed_at": now,
                    "ad_source_id": str(ad)[:64] if ad else None,
                }
            )
        queue_event(
            session,
            "conversation.updated",
            {"conversation_id": cid, "inbox_id": inbox_id, "source": source["type"]},
        )
        queue_event(session, "contact.updated", {"contact_id": contact_id})
    if attributions:
        insert = insert_for(session.bind.dialect.name)
        await session.execute(
            insert(LinkAttribution)
            .values(attributions)
            .on_conflict_do_nothing(index_elements=["conversation_id"])
        )
