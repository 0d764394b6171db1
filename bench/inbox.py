"""Agent inbox benchmark: server time of the conversation list and of a long thread, on
PostgreSQL, with 100,000 conversations and 1,000,000 messages.

Sets everything up itself: a fresh PostgreSQL database (dropped at the end unless --keep),
migrations, ten inboxes, an admin and an agent who is a member of two inboxes, then a bulk
load with COPY: 100,000 contacts and conversations (activity spread over 90 days, a quarter
open, a third assigned), 1,000,000 messages, one conversation with 5,000 of them, labels.

Requests go to the wadesk app in this process through ``httpx.ASGITransport`` (no network, no
client pool): the time measured is the server's, from routing and authentication to the JSON
body. Each scenario is requested sequentially (one at a time, warm) and its p50/p95/max kept.
Baselines in the same run: ``GET /healthz`` (the framework's floor: routing, middleware, JSON)
and ``GET /readyz`` (one ``SELECT 1`` through the same pool). The table also shows the p95 of
this process's CPU time per request (``cpu p95``: the app's own work, without PostgreSQL's and
without waiting for a CPU) and the load average: on a shared machine wall times grow with it.

Run `.venv/bin/python bench/inbox.py [--quick] [--json] [--explain]`. ``--quick`` loads a
tenth of the data (10,000 conversations, 100,000 messages). Exit status 0 when both p95s are
under the target (150 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

TARGET_P95_MS = 150.0
INBOXES = 10
THREAD_MESSAGES = 5_000
WORDS = [
    "order",
    "delivery",
    "refund",
    "invoice",
    "payment",
    "pix",
    "boleto",
    "tracking",
    "address",
    "exchange",
    "size",
    "colour",
    "discount",
    "coupon",
    "late",
    "broken",
    "thanks",
    "hello",
    "please",
    "when",
    "where",
    "urgent",
    "status",
    "receipt",
    "pedido",
    "entrega",
    "troca",
    "obrigado",
    "olá",
    "prazo",
    "frete",
    "nota",
    "fiscal",
    "cancelamento",
]


@dataclass(frozen=True)
class Options:
    pg_url: str
    database: str
    conversations: int
    messages: int
    requests: int
    json: bool
    explain: bool
    keep: bool

    @property
    def dsn(self) -> str:
        return f"{self.pg_url}/{self.database}"

    @property
    def sqlalchemy_url(self) -> str:
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def log(options: Options, text: str) -> None:
    print(text, file=sys.stderr if options.json else sys.stdout, flush=True)


async def recreate_database(options: Options) -> None:
    conn = await asyncpg.connect(f"{options.pg_url}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{options.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{options.database}"')
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    os.environ["BENCH_PG_VERSION"] = str(version)


async def drop_database(options: Options) -> None:
    conn = await asyncpg.connect(f"{options.pg_url}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{options.database}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate(options: Options, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "wadesk", "db", "upgrade"], check=True, env=env, capture_output=True
    )


async def create_people_and_inboxes(options: Options) -> dict[str, Any]:
    """Through wadesk's own actions (tokens, encrypted inbox credentials)."""
    from wadesk.accounts.actions import do_add_inbox_member, do_create_token, do_create_user
    from wadesk.audit.actions import Actor
    from wadesk.config import get_settings
    from wadesk.db import Database
    from wadesk.inboxes.actions import do_create_whatsapp_inbox

    actor = Actor.system("bench")
    settings = get_settings()
    db = Database(settings)
    try:
        async with db.session() as session:
            inbox_ids = []
            for i in range(INBOXES):
                inbox = await do_create_whatsapp_inbox(
                    session,
                    actor=actor,
                    settings=settings,
                    name=f"Bench {i}",
                    phone_number_id=f"1065403522{i:05d}",
                    waba_id="102290129340398",
                    access_token="EAAG-bench",
                    app_secret="bench-secret",
                    verify_token="bench-verify",
                    display_phone_number=f"1555078{i:04d}",
                    graph_url="http://127.0.0.1:9/graph",
                )
                inbox_ids.append(inbox.id)
            admin = await do_create_user(
                session,
                actor=actor,
                email="admin@bench.test",
                name="Admin",
                role="admin",
                password=None,
            )
            agent = await do_create_user(
                session,
                actor=actor,
                email="agent@bench.test",
                name="Agent",
                role="agent",
                password=None,
            )
            for inbox_id in inbox_ids[:2]:
                await do_add_inbox_member(session, actor=actor, inbox_id=inbox_id, user=agent)
            _, admin_token = await do_create_token(
                session, actor=actor, user=admin, name="bench", scopes=("read", "write", "admin")
            )
            _, agent_token = await do_create_token(
                session, actor=actor, user=agent, name="bench", scopes=("read", "write")
            )
            return {
                "inbox_ids": inbox_ids,
                "admin_id": admin.id,
                "agent_id": agent.id,
                "admin_token": admin_token,
                "agent_token": agent_token,
            }
    finally:
        await db.dispose()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))


async def bulk_load(options: Options, people: dict[str, Any]) -> dict[str, Any]:
    """COPY contacts, conversations, messages; the search index is built after the load."""
    rng = random.Random(42)
    n = options.conversations
    now = datetime.now(UTC)
    conn = await asyncpg.connect(options.dsn)
    started = time.perf_counter()
    try:
        await conn.execute("DROP INDEX IF EXISTS ix_messages_text_trgm")
        await conn.execute("DROP INDEX IF EXISTS ix_contacts_name_trgm")
        contacts = [
            (
                i + 1,
                f"{rng.choice(['Ana', 'Bruno', 'Carla', 'Diego', 'Elis', 'Fábio'])} "
                f"{rng.choice(['Silva', 'Souza', 'Lima', 'Costa', 'Rocha'])} {i}",
                f"+55119{i:08d}",
                f"55119{i:08d}",
                "{}",
                now,
                now,
            )
            for i in range(n)
        ]
        await conn.copy_records_to_table(
            "contacts",
            records=contacts,
            columns=[
                "id",
                "name",
                "phone_e164",
                "phone_key",
                "attributes",
                "created_at",
                "updated_at",
            ],
        )
        inbox_ids = people["inbox_ids"]
        statuses = ["open"] * 25 + ["pending"] * 10 + ["snoozed"] * 5 + ["resolved"] * 60
        conversations = []
        per_conversation = max(1, (options.messages - THREAD_MESSAGES) // n)
        for i in range(n):
            status = rng.choice(statuses)
            roll = rng.random()
            assignee = (
                people["agent_id"] if roll < 0.1 else people["admin_id"] if roll < 0.35 else None
            )
            activity = now - timedelta(seconds=rng.randint(0, 90 * 86400))
            conversations.append(
                (
                    i + 1,
                    inbox_ids[i % len(inbox_ids)],
                    i + 1,
                    status,
                    rng.choice(["none"] * 8 + ["high", "urgent"]),
                    assignee,
                    activity,
                    activity,
                    sentence(rng)[:200],
                    rng.choice([0, 0, 0, 1, 2]) if status == "open" else 0,
                    activity - timedelta(days=1),
                    activity,
                    activity if status == "resolved" else None,
                )
            )
        await conn.copy_records_to_table(
            "conversations",
            records=conversations,
            columns=[
                "id",
                "inbox_id",
                "contact_id",
                "status",
                "priority",
                "assignee_id",
                "last_customer_message_at",
                "last_activity_at",
                "last_message_preview",
                "unread_count",
                "created_at",
                "updated_at",
                "resolved_at",
            ],
        )
        # The long thread: conversation 1 (an agent's inbox), open, the newest activity.
        thread_id = 1
        await conn.execute(
            "UPDATE conversations SET status = 'open', assignee_id = $1, last_activity_at = $2"
            " WHERE id = $3",
            people["agent_id"],
            now,
            thread_id,
        )
        batch: list[tuple[Any, ...]] = []
        message_id = 0
        columns = [
            "id",
            "inbox_id",
            "conversation_id",
            "direction",
            "type",
            "text",
            "content",
            "status",
            "media_attempts",
            "created_at",
        ]

        async def flush() -> None:
            await conn.copy_records_to_table("messages", records=batch, columns=columns)
            batch.clear()

        def add(conversation: tuple[Any, ...], at: datetime) -> None:
            nonlocal message_id
            message_id += 1
            inbound = rng.random() < 0.55
            batch.append(
                (
                    message_id,
                    conversation[1],
                    conversation[0],
                    "in" if inbound else "out",
                    "text",
                    sentence(rng),
                    "{}",
                    "received" if inbound else "read",
                    0,
                    at,
                )
            )

        thread = conversations[0]
        for k in range(THREAD_MESSAGES):
            add(thread, now - timedelta(minutes=THREAD_MESSAGES - k))
        for conversation in conversations[1:]:
            for k in range(per_conversation):
                add(conversation, conversation[7] - timedelta(minutes=per_conversation - k))
            if len(batch) >= 50_000:
                await flush()
        while message_id < options.messages:
            add(conversations[rng.randrange(1, n)], now - timedelta(days=91))
        await flush()
        labels = [
            (i + 1, name, color)
            for i, (name, color) in enumerate(
                [
                    ("billing", "#22c55e"),
                    ("vip", "#eab308"),
                    ("bug", "#ef4444"),
                    ("lead", "#3b82f6"),
                ]
            )
        ]
        await conn.copy_records_to_table("labels", records=labels, columns=["id", "name", "color"])
        await conn.copy_records_to_table(
            "conversation_labels",
            records=[(i + 1, rng.randint(1, 4)) for i in range(0, n, 7)],
            columns=["conversation_id", "label_id"],
        )
        for table in ("contacts", "conversations", "messages", "labels"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        loaded = time.perf_counter() - started
        index_started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.execute(
            "CREATE INDEX ix_messages_text_trgm ON messages USING gin (text gin_trgm_ops)"
        )
        await conn.execute(
            "CREATE INDEX ix_contacts_name_trgm ON contacts USING gin (name gin_trgm_ops)"
        )
        indexed = time.perf_counter() - index_started
        await conn.execute("VACUUM ANALYZE")
        total_messages = await conn.fetchval("SELECT count(*) FROM messages")
        total_conversations = await conn.fetchval("SELECT count(*) FROM conversations")
    finally:
        await conn.close()
    return {
        "thread_id": thread_id,
        "conversations": int(total_conversations),
        "messages": int(total_messages),
        "load_s": round(loaded, 1),
        "search_index_s": round(indexed, 1),
    }


@dataclass
class Scenario:
    name: str
    who: str
    path: str
    params: dict[str, Any]
    kind: str  # baseline | list | thread | other


def scenarios(thread_id: int, older_cursor: str) -> list[Scenario]:
    messages = f"/api/v1/conversations/{thread_id}/messages"
    return [
        Scenario("baseline: GET /healthz (framework floor)", "admin", "/healthz", {}, "baseline"),
        Scenario("baseline: GET /readyz (SELECT 1)", "admin", "/readyz", {}, "baseline"),
        Scenario("list, admin, all", "admin", "/api/v1/conversations", {}, "list"),
        Scenario(
            "list, admin, mine + open",
            "admin",
            "/api/v1/conversations",
            {"folder": "mine", "status": "open"},
            "list",
        ),
        Scenario(
            "list, admin, unassigned + open",
            "admin",
            "/api/v1/conversations",
            {"folder": "unassigned", "status": "open"},
            "list",
        ),
        Scenario("list, agent (2 inboxes), all", "agent", "/api/v1/conversations", {}, "list"),
        Scenario("list, agent, mine", "agent", "/api/v1/conversations", {"folder": "mine"}, "list"),
        Scenario(
            "list, agent, unassigned + open",
            "agent",
            "/api/v1/conversations",
            {"folder": "unassigned", "status": "open"},
            "list",
        ),
        Scenario(
            "list, agent, label vip", "agent", "/api/v1/conversations", {"label": "vip"}, "list"
        ),
        Scenario(
            "list, agent, priority urgent + open",
            "agent",
            "/api/v1/conversations",
            {"priority": "urgent", "status": "open"},
            "list",
        ),
        Scenario("thread 5,000 messages, first page", "agent", messages, {}, "thread"),
        Scenario(
            "thread 5,000 messages, older page",
            "agent",
            messages,
            {"cursor": older_cursor},
            "thread",
        ),
        Scenario(
            "search q='reembolso' (no match), agent",
            "agent",
            "/api/v1/conversations",
            {"q": "reembolso"},
            "other",
        ),
        Scenario(
            "search q='Carla Lima 12', admin",
            "admin",
            "/api/v1/conversations",
            {"q": "Carla Lima 12"},
            "other",
        ),
        Scenario(
            "search q='refund' (in 1 message of 4), agent",
            "agent",
            "/api/v1/conversations",
            {"q": "refund"},
            "other",
        ),
        Scenario("folder counts, agent", "agent", "/api/v1/conversations/counts", {}, "other"),
        Scenario("folder counts, admin", "admin", "/api/v1/conversations/counts", {}, "other"),
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(options: Options, people: dict[str, Any], loaded: dict[str, Any]) -> list[dict]:
    from wadesk.app import create_app
    from wadesk.config import Settings
    from wadesk.pagination import encode_cursor

    settings = Settings(var_dir=Path(tempfile.mkdtemp(prefix="wadesk-bench-inbox-")))
    app = create_app(settings, run_workers=False)
    tokens = {"admin": people["admin_token"], "agent": people["agent_token"]}
    results = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            # the older page starts in the middle of the long thread
            conn = await asyncpg.connect(options.dsn)
            middle = await conn.fetchval(
                "SELECT id FROM messages WHERE conversation_id = $1 ORDER BY id OFFSET $2 LIMIT 1",
                loaded["thread_id"],
                THREAD_MESSAGES // 2,
            )
            await conn.close()
            for scenario in scenarios(loaded["thread_id"], encode_cursor(int(middle))):
                headers = {"Authorization": f"Bearer {tokens[scenario.who]}"}
                timings: list[float] = []
                cpu: list[float] = []
                items = None
                # 100+ measured requests for the list and thread; 30 for the extra rows
                count = options.requests if scenario.kind != "other" else 30
                for i in range(count + 10):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    response = await client.get(
                        scenario.path, params=scenario.params, headers=headers
                    )
                    elapsed = (time.perf_counter() - started) * 1000
                    cpu_ms = (time.process_time() - cpu_started) * 1000
                    if response.status_code != 200:
                        raise SystemExit(
                            f"{scenario.name}: {response.status_code} {response.text[:300]}"
                        )
                    if i >= 10:  # warm-up first
                        timings.append(elapsed)
                        cpu.append(cpu_ms)
                    body = response.json()
                    if isinstance(body, dict) and "items" in body:
                        items = len(body["items"])
                results.append(
                    {
                        "scenario": scenario.name,
                        "kind": scenario.kind,
                        "requests": len(timings),
                        "items": items,
                        "p50_ms": round(statistics.median(timings), 2),
                        "p95_ms": round(percentile(timings, 0.95), 2),
                        "max_ms": round(max(timings), 2),
                        "cpu_p95_ms": round(percentile(cpu, 0.95), 2),
                    }
                )
                log(options, f"  {scenario.name}: p95 {results[-1]['p95_ms']} ms")
    return results


EXPLAINED = {
    "admin, all": "SELECT * FROM conversations ORDER BY last_activity_at DESC, id DESC LIMIT 51",
    "agent (2 inboxes), all": (
        "SELECT * FROM conversations WHERE inbox_id IN (1, 2)"
        " ORDER BY last_activity_at DESC, id DESC LIMIT 51"
    ),
    "agent, mine": (
        "SELECT * FROM conversations WHERE inbox_id IN (1, 2) AND assignee_id = {agent}"
        " ORDER BY last_activity_at DESC, id DESC LIMIT 51"
    ),
    "unassigned + open": (
        "SELECT * FROM conversations WHERE assignee_id IS NULL AND status = 'open'"
        " ORDER BY last_activity_at DESC, id DESC LIMIT 51"
    ),
    "agent, label vip": (
        "SELECT * FROM conversations WHERE inbox_id IN (1, 2) AND id IN (SELECT"
        " conversation_labels.conversation_id FROM conversation_labels JOIN labels ON labels.id"
        " = conversation_labels.label_id WHERE lower(labels.name) = 'vip')"
        " ORDER BY last_activity_at DESC, id DESC LIMIT 51"
    ),
    "thread first page": (
        "SELECT * FROM messages WHERE conversation_id = 1 ORDER BY id DESC LIMIT 51"
    ),
    "search (name, phone, message text)": (
        "SELECT * FROM conversations WHERE inbox_id IN (1, 2) AND id IN ("
        " SELECT id FROM conversations WHERE contact_id IN"
        " (SELECT id FROM contacts WHERE name ILIKE '%Carla Lima 12%')"
        " UNION SELECT conversation_id FROM messages WHERE text ILIKE '%Carla Lima 12%')"
        " ORDER BY last_activity_at DESC, id DESC LIMIT 51"
    ),
}


async def explain(options: Options, people: dict[str, Any]) -> dict[str, str]:
    conn = await asyncpg.connect(options.dsn)
    plans = {}
    try:
        for name, sql in EXPLAINED.items():
            rows = await conn.fetch(
                "EXPLAIN (ANALYZE, BUFFERS OFF) " + sql.format(agent=people["agent_id"])
            )
            plans[name] = "\n".join(r[0] for r in rows)
    finally:
        await conn.close()
    return plans


def print_table(data: dict[str, Any]) -> None:
    print()
    print(
        f"wadesk inbox benchmark — {data['conversations']:,} conversations,"
        f" {data['messages']:,} messages, thread of {THREAD_MESSAGES:,}"
        f" (PostgreSQL {data['postgresql']}, {data['machine']})"
    )
    print(f"bulk load {data['load_s']} s, trigram index {data['search_index_s']} s")
    print()
    print(f"load average during the measurements: {data['load_average']}")
    print()
    print(
        f"{'scenario':<44} {'n':>4} {'items':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
        f" {'cpu p95':>8}"
    )
    print("-" * 91)
    for row in data["scenarios"]:
        print(
            f"{row['scenario']:<44} {row['requests']:>4} {row['items'] or '':>5}"
            f" {row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} {row['max_ms']:>8.2f}"
            f" {row['cpu_p95_ms']:>8.2f}"
        )
    print("-" * 91)
    verdict = "PASS" if data["ok"] else "FAIL"
    print(
        f"list_p95_ms {data['list_p95_ms']}  thread_p95_ms {data['thread_p95_ms']}"
        f"  (target < {TARGET_P95_MS:.0f} ms): {verdict}"
    )
    for name, plan in data.get("plans", {}).items():
        print(f"\nEXPLAIN ANALYZE — {name}\n{plan}")


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the data")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--requests", type=int, default=120, help="measured requests each")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="wadesk_bench_inbox", help="dropped and re-created")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    return Options(
        args.pg_url.rstrip("/"),
        args.database,
        100_000 // scale,
        1_000_000 // scale,
        max(100, args.requests),
        args.json,
        args.explain,
        args.keep,
    )


async def run(options: Options) -> dict[str, Any]:
    await recreate_database(options)
    env = {
        **os.environ,
        "WADESK_DATABASE_URL": options.sqlalchemy_url,
        "WADESK_SECRET_KEY": os.environ.get("WADESK_SECRET_KEY", "bench-secret-key-not-for-prod"),
        "WADESK_LOG_LEVEL": "WARNING",
        "WADESK_VAR_DIR": tempfile.mkdtemp(prefix="wadesk-bench-inbox-var-"),
    }
    os.environ.update(env)
    from wadesk.config import get_settings

    get_settings.cache_clear()
    try:
        log(options, "migrating ...")
        migrate(options, env)
        people = await create_people_and_inboxes(options)
        log(options, f"loading {options.conversations:,} conversations ...")
        loaded = await bulk_load(options, people)
        log(options, f"loaded in {loaded['load_s']} s; measuring ...")
        load_before = os.getloadavg()[0]
        rows = await measure(options, people, loaded)
        load_after = os.getloadavg()[0]
        plans = await explain(options, people) if options.explain else {}
    finally:
        if not options.keep:
            await drop_database(options)
    list_p95 = max(r["p95_ms"] for r in rows if r["kind"] == "list")
    thread_p95 = max(r["p95_ms"] for r in rows if r["kind"] == "thread")
    return {
        "list_p95_ms": list_p95,
        "thread_p95_ms": thread_p95,
        "target_p95_ms": TARGET_P95_MS,
        "ok": list_p95 < TARGET_P95_MS and thread_p95 < TARGET_P95_MS,
        "conversations": loaded["conversations"],
        "messages": loaded["messages"],
        "load_s": loaded["load_s"],
        "search_index_s": loaded["search_index_s"],
        "postgresql": os.environ.get("BENCH_PG_VERSION", "?"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": f"{load_before:.1f} before, {load_after:.1f} after",
        "scenarios": rows,
        **({"plans": plans} if plans else {}),
    }


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    data = asyncio.run(run(options))
    if options.json:
        print(json.dumps(data))
    else:
        print_table(data)
    return 0 if data["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
