"""static/js/realtime.js listens to every event kind the server can stream.

EventSource hands a named event only to listeners of that name: a kind missing from KINDS would
never reach the page. This reads the kinds queued in the code and compares."""

from __future__ import annotations

import re
from pathlib import Path

from wadesk.realtime.bus import WAKE_UP_KINDS

SRC = Path(__file__).resolve().parents[2] / "src" / "wadesk"
QUEUED = re.compile(r"queue_event\(\s*[\w.]+,\s*\"([a-z_]+\.[a-z_]+)\"", re.S)
LISTED = re.compile(r"export const KINDS = \[(.*?)\];", re.S)


def test_the_module_lists_every_kind_the_code_queues():
    queued = set()
    for path in SRC.rglob("*.py"):
        queued.update(QUEUED.findall(path.read_text(encoding="utf-8")))
    assert {"message.created", "conversation.updated"} <= queued  # the pattern still matches
    script = (SRC / "web" / "static" / "js" / "realtime.js").read_text(encoding="utf-8")
    match = LISTED.search(script)
    assert match
    listed = set(re.findall(r'"([^"]+)"', match.group(1)))
    missing = queued - WAKE_UP_KINDS - listed
    assert not missing, f"add to KINDS in static/js/realtime.js: {sorted(missing)}"
