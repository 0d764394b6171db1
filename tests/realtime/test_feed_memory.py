"""EventFeed.since: the events after a stream's position, from the feed's memory."""

from __future__ import annotations

from typing import Any, cast

from wadesk.realtime.feed import EventFeed
from wadesk.realtime.queries import LoggedEvent


def _feed(first: int, last: int, keep: int) -> EventFeed:
    feed = EventFeed(cast(Any, None), keep=keep)
    feed._buffer.extend(LoggedEvent(i, "k", None, None, {}) for i in range(first, last + 1))
    feed._base, feed.last = first - 1, last
    return feed


def test_since_reads_the_tail_from_memory_whatever_the_distance():
    feed = _feed(101, 200, keep=100)
    assert feed.since(99) is None  # before memory: the stream reads the table
    assert feed.since(200) == [] and feed.since(250) == []
    for position in (100, 101, 149, 150, 151, 190, 199):
        assert [e.id for e in feed.since(position) or []] == list(range(position + 1, 201))
    assert _feed(1, 0, keep=10).since(0) == []
    feed.last = None  # not tailing
    assert feed.since(150) is None
