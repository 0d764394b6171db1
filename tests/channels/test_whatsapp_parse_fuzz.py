"""Property tests: mutated real payloads never crash parse_webhook, and what comes out is sane.

The fixtures (tests/fixtures/whatsapp) are mutated at random places: keys deleted, values
replaced by wrong types, None, huge strings, deep nesting, unicode including lone surrogates
decoded from bytes, and unknown message types. ``parse_webhook`` may refuse the whole body
only with ``ParseError``; anything it returns must be well typed and storable.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wadesk.channels.base import InboundMessage, Media, ParsedDelivery, StatusUpdate
from wadesk.channels.whatsapp.parse import STATUS_VALUES, ParseError, ParseResult, parse_webhook

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"
BODIES = {
    path.stem: json.loads(path.read_text(encoding="utf-8"))
    for path in sorted(FIXTURES.glob("*.json"))
}
NAMES = sorted(BODIES)

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Path_ = tuple[Any, ...]


# -- junk ------------------------------------------------------------------------------------

lone_surrogates = st.binary(min_size=1, max_size=40).map(
    lambda raw: raw.decode("utf-8", "surrogateescape")
)
surrogate_pairs_split = st.binary(min_size=2, max_size=40).map(
    lambda raw: (
        raw[: len(raw) // 2 * 2].decode("utf-16-le", "surrogatepass")
        if _utf16_ok(raw[: len(raw) // 2 * 2])
        else "\ud83d"
    )
)


def _utf16_ok(raw: bytes) -> bool:
    try:
        raw.decode("utf-16-le", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


def _deep(depth: int, leaf: Any, as_list: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"k": value}
    return value


deep_nesting = st.builds(
    _deep, st.integers(min_value=20, max_value=1000), st.sampled_from(["x", 1, None]), st.booleans()
)
huge_strings = st.sampled_from(["9" * 200_000, "x" * 300_000, "\U0001f600" * 50_000, "\x00" * 1000])
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**63, 10**19, 1750300001000, 1e308, -0.0]),
)
json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
junk = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    lone_surrogates,
    surrogate_pairs_split,
    huge_strings,
    deep_nesting,
    json_like,
    st.sampled_from(["", " ", "wamid.", "+", "+16505551234", "1750300001", "-1", "NaN", "0"]),
)
unknown_types = st.one_of(
    st.sampled_from(
        ["poll_creation", "edit", "pin", "hologram", "TEXT", "", " text", "group_invite", "unknown"]
    ),
    st.text(max_size=30),
    lone_surrogates,
)


# -- mutation --------------------------------------------------------------------------------


def _paths(root: Any) -> list[Path_]:
    """Every path in the tree (iteratively: mutated bodies can be nested 1,000 deep)."""
    found: list[Path_] = []
    stack: list[tuple[Path_, Any]] = [((), root)]
    while stack:
        prefix, node = stack.pop()
        found.append(prefix)
        if isinstance(node, dict):
            stack.extend(((*prefix, key), value) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend(((*prefix, index), value) for index, value in enumerate(node))
    return sorted(found, key=lambda path: (len(path), repr(path)))


def _get(root: Any, path: Path_) -> Any:
    for step in path:
        root = root[step]
    return root


def _mutate(data: st.DataObject, body: Any, under: Path_ = ()) -> Any:
    paths = [p for p in _paths(body) if p[: len(under)] == under and len(p) > len(under)]
    if not paths:
        return body
    path = data.draw(st.sampled_from(paths), label="path")
    parent = _get(body, path[:-1])
    last = path[-1]
    action = data.draw(
        st.sampled_from(["delete", "replace", "unknown_type", "wrap", "duplicate"]), label="action"
    )
    if action == "delete":
        if isinstance(parent, dict):
            del parent[last]
        else:
            parent.pop(last)
    elif action == "replace":
        parent[last] = data.draw(junk, label="junk")
    elif action == "unknown_type":
        holder = parent if isinstance(parent, dict) else _get(body, path[:-2])
        if isinstance(holder, dict):
            holder["type"] = data.draw(unknown_types, label="type")
    elif action == "wrap":
        parent[last] = data.draw(st.sampled_from([[parent[last]], {"value": parent[last]}]))
    elif isinstance(parent, list):
        parent.append(parent[last])  # shared, not copied: values can be nested very deep
    else:
        parent[last] = [parent[last], parent[last]]
    return body


# -- what comes out ---------------------------------------------------------------------------


def _storable(value: Any, depth: int = 0) -> None:
    """JSON-storable in PostgreSQL: clean UTF-8 strings, finite numbers, bounded depth."""
    assert depth < 64
    if isinstance(value, str):
        assert "\x00" not in value
        value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            _storable(key, depth + 1)
            _storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _storable(item, depth + 1)
    elif isinstance(value, float):
        assert value == value and value not in (float("inf"), float("-inf"))
    else:
        assert value is None or isinstance(value, bool | int)


def _clean_str(value: Any, *, empty: bool = True) -> None:
    assert isinstance(value, str)
    _storable(value)
    if not empty:
        assert value.strip()


def _check(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    delivery = result.delivery
    assert isinstance(delivery, ParsedDelivery)
    for problem in result.problems:
        _clean_str(problem)
    for note in delivery.notes:
        _clean_str(note)
    for message in delivery.messages:
        assert isinstance(message, InboundMessage)
        _clean_str(message.account_id, empty=False)
        _clean_str(message.external_id, empty=False)
        _clean_str(message.sender, empty=False)
        assert message.sender.isascii() and message.sender.isdigit()
        _clean_str(message.type, empty=False)
        assert message.timestamp.tzinfo is not None
        assert message.timestamp.utcoffset() == timedelta(0)
        if message.sender_name is not None:
            _clean_str(message.sender_name)
        if message.text is not None:
            _clean_str(message.text)
        if message.reply_to_external_id is not None:
            _clean_str(message.reply_to_external_id)
        assert isinstance(message.content, dict)
        _storable(message.content)
        json.dumps(message.content)
        if message.referral is not None:
            assert isinstance(message.referral, dict)
            _storable(message.referral)
            json.dumps(message.referral)
        if message.media is not None:
            assert isinstance(message.media, Media)
            _clean_str(message.media.provider_id, empty=False)
            for optional in (message.media.mime_type, message.media.filename, message.media.sha256):
                if optional is not None:
                    _clean_str(optional)
            assert isinstance(message.media.voice, bool)
        if message.type == "unsupported" and "unknown_type" in message.content:
            assert any("unknown message type" in problem for problem in result.problems)
    for status in delivery.statuses:
        assert isinstance(status, StatusUpdate)
        _clean_str(status.account_id, empty=False)
        _clean_str(status.external_id, empty=False)
        assert status.status in STATUS_VALUES
        assert status.timestamp.tzinfo is not None
        assert status.timestamp.utcoffset() == timedelta(0)
        for optional in (status.recipient, status.error_code, status.error_title):
            if optional is not None:
                _clean_str(optional)


def _parse(body: Any) -> ParseResult | None:
    try:
        result = parse_webhook(body)
    except ParseError as exc:
        _clean_str(str(exc))
        return None
    _check(result)
    return result


# -- properties ------------------------------------------------------------------------------


@FUZZ
@given(name=st.sampled_from(NAMES), rounds=st.integers(min_value=1, max_value=4), data=st.data())
def test_mutated_fixtures_never_crash(name: str, rounds: int, data: st.DataObject) -> None:
    body = copy.deepcopy(BODIES[name])
    for _ in range(rounds):
        body = _mutate(data, body)
    _parse(body)


@FUZZ
@given(data=st.data())
def test_a_broken_message_never_hides_the_rest_of_a_batch(data: st.DataObject) -> None:
    body = copy.deepcopy(BODIES["batch"])
    target = data.draw(
        st.sampled_from(
            [
                ("entry", 0, "changes", 0, "value", "messages", 0),
                ("entry", 0, "changes", 0, "value", "messages", 1),
                ("entry", 1, "changes", 0, "value", "messages", 1),
            ]
        ),
        label="target",
    )
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="rounds")):
        _mutate(data, body, under=target)
    result = _parse(body)
    assert result is not None
    # The four other messages and all five statuses are always there.
    assert len(result.delivery.messages) >= 4
    assert len(result.delivery.statuses) == 5


@FUZZ
@given(body=st.one_of(json_like, junk, st.dictionaries(st.text(max_size=10), json_like)))
def test_arbitrary_json_is_refused_or_parsed(body: Any) -> None:
    _parse(body)


@FUZZ
@given(entry=json_like, value=json_like)
def test_arbitrary_shapes_under_a_valid_envelope(entry: Any, value: Any) -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [entry, {"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    result = _parse(body)
    assert result is not None
