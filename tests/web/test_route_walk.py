"""Every route of the app, read from the router, called by people who must not get its data.

A new route is walked automatically; the walk fails until it is classified here (public, or
"my own data") or it answers 401/403/404 to outsiders. Path parameters are filled with ids of
objects the outsider cannot see; JSON bodies are valid, so the access check is what answers.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select
from starlette.routing import Mount

from tests.helpers import (
    auth,
    create_inbox,
    create_user,
    envelope,
    post_signed,
    settle,
    text_message,
)
from tests.web.client import csrf_of, sign_in, web_client
from wadesk.accounts.models import ApiToken, UserSession
from wadesk.conversations.models import Message

# Open to anyone, and why.
PUBLIC = {
    ("GET", "/healthz"): "liveness",
    ("GET", "/readyz"): "readiness (no data)",
    ("GET", "/metrics"): "Prometheus counters (no personal data); firewall it in production",
    ("GET", "/openapi.json"): "the API's description",
    ("GET", "/api/docs"): "the API's description",
    ("GET", "/docs/oauth2-redirect"): "Swagger UI helper",
    ("GET", "/webhooks/whatsapp"): "Meta's verification handshake (needs the verify token)",
    ("GET", "/webhooks/whatsapp/{key}"): "Meta's verification handshake (needs the verify token)",
    ("GET", "/c/{slug}/button.js"): "a click-to-chat link's public website button",
    ("GET", "/"): "redirects to sign-in or my account",
    ("GET", "/login"): "the sign-in page",
    ("POST", "/login"): "signing in",
    ("GET", "/login/mfa"): "the second step (needs the password step's session)",
    ("POST", "/login/mfa"): "the second step",
    ("GET", "/static/vendor/{name:path}"): "only without htmx installed: says how to fix it",
    ("GET", "/demo/orders/{number}"): "demo sample orders (simulator only; needs its key)",
}
MOUNTS = {
    "/static": "CSS, favicon, script",
    "/static/vendor": "htmx from node_modules (make assets)",
    "/simulator": "the WhatsApp simulator (development)",
}

# Signed-in people reach these, about themselves only (ids of others' objects: 404).
SELF = {
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/me/sessions"),
    ("DELETE", "/api/v1/me/sessions"),
    ("DELETE", "/api/v1/me/sessions/{session_id}"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id}"),
    ("POST", "/logout"),
    ("GET", "/account"),
    ("GET", "/inbox"),
    ("GET", "/inbox/list"),
    ("GET", "/account/reauth"),
    ("POST", "/account/reauth"),
    ("GET", "/account/password"),
    ("POST", "/account/password"),
    ("GET", "/account/mfa/setup"),
    ("POST", "/account/mfa/setup"),
    ("POST", "/account/mfa/recovery-codes"),
    ("POST", "/account/mfa/disable"),
    ("POST", "/account/sessions/{session_id}/revoke"),
    ("POST", "/account/sessions/revoke-others"),
    ("POST", "/account/tokens"),
    ("POST", "/account/tokens/{token_id}/revoke"),
    ("GET", "/api/v1/routing/me"),  # routing: my availability
    ("PUT", "/api/v1/routing/me"),
    ("GET", "/account/availability"),
    ("POST", "/account/availability"),
    ("GET", "/api/v1/conversations/counts"),
    ("POST", "/api/v1/mentions/read"),
}
# Creating something new is allowed to every role (docs/permissions.md); it reveals nothing.
CREATES = {("POST", "/api/v1/contacts"), ("POST", "/api/v1/labels")}
# Lists: an outsider gets 200 with nothing in it.
LISTS = {
    "/api/v1/conversations",
    "/api/v1/contacts",
    "/api/v1/inboxes",
    "/api/v1/labels",
    "/api/v1/mentions",
    "/api/v1/quick-replies",
    "/api/v1/message-templates",
    "/api/v1/automation/faq",
    "/api/v1/automation/flows",
}
# Event streams: an outsider gets 200 and a stream with nothing in it (read for a moment).
STREAMS = {"/api/v1/events"}

JSON_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    # routing and teams
    ("PUT", "/api/v1/routing/me"): {"availability": "away"},
    ("PATCH", "/api/v1/routing/agents/{user_id}"): {"capacity": 9},
    ("POST", "/api/v1/routing/conversations/{conversation_id}/assign"): {"user_id": None},
    ("PUT", "/api/v1/routing/inboxes/{inbox_id}"): {"strategy": "round_robin"},
    ("PUT", "/api/v1/routing/config"): {"default_capacity": 9},
    ("POST", "/api/v1/routing/rules"): {"name": "walk"},
    ("PATCH", "/api/v1/routing/rules/{rule_id}"): {"name": "walk"},
    ("POST", "/api/v1/routing/rules/test"): {"text": "secret order 42"},
    ("POST", "/api/v1/teams"): {"name": "walk"},
    ("PATCH", "/api/v1/teams/{team_id}"): {"name": "walk"},
    ("PUT", "/api/v1/teams/{team_id}/members/{user_id}"): {"role": "agent"},
    ("POST", "/api/v1/contacts"): {"name": "Walk", "phone": "+14155550199"},
    ("PATCH", "/api/v1/contacts/{contact_id}"): {"name": "Walk"},
    ("PATCH", "/api/v1/conversations/{conversation_id}"): {"status": "resolved"},
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): {"type": "text", "text": "hi"},
    ("POST", "/api/v1/conversations/{conversation_id}/messages/batch"): {
        "messages": [{"type": "text", "text": "hi", "idempotency_key": "walk"}]
    },
    ("POST", "/api/v1/inboxes/whatsapp"): {
        "name": "x",
        "phone_number_id": "999",
        "access_token": "EAAG",
        "app_secret": "s",
    },
    ("PATCH", "/api/v1/inboxes/{inbox_id}"): {"name": "x"},
    ("POST", "/api/v1/webhook-deliveries/replay"): {"ids": [1]},
    ("POST", "/api/v1/tokens"): {"name": "walk", "scopes": ["read"]},
    ("POST", "/api/v1/users"): {"email": "walk@example.com", "name": "Walk"},
    ("PATCH", "/api/v1/users/{user_id}"): {"role": "admin"},
    ("PUT", "/api/v1/security/policy"): {"mfa_policy": "optional"},
    ("POST", "/api/v1/links"): {"phone": "+14155550123", "message": "Hello"},
    ("POST", "/api/v1/links/preview"): {"phone": "+14155550123", "message": "Hello"},
    ("PATCH", "/api/v1/links/{link_id}"): {"name": "Walk"},
    ("POST", "/api/v1/conversations/{conversation_id}/notes"): {"text": "hi"},
    ("POST", "/api/v1/labels"): {"name": "walk", "color": "#112233"},
    ("PATCH", "/api/v1/labels/{label_id}"): {"name": "walk2"},
    ("POST", "/api/v1/mentions/read"): {},
    # automation
    ("POST", "/api/v1/automation/inboxes/{inbox_id}/rules"): {
        "name": "walk",
        "actions": [{"type": "resolve"}],
    },
    ("PATCH", "/api/v1/automation/rules/{rule_id}"): {"name": "walk"},
    ("POST", "/api/v1/automation/rules/{rule_id}/move"): {"offset": 1},
    ("POST", "/api/v1/automation/inboxes/{inbox_id}/try"): {"text": "secret order 42"},
    ("PUT", "/api/v1/automation/inboxes/{inbox_id}/settings"): {"timezone": "UTC"},
    ("POST", "/api/v1/automation/integrations"): {"name": "walk", "url": "https://example.com"},
    ("PATCH", "/api/v1/automation/integrations/{integration_id}"): {"timeout_seconds": 2},
    ("POST", "/api/v1/quick-replies"): {"shortcut": "walk", "text": "x"},
    ("POST", "/api/v1/automation/faq"): {"question": "walk", "answer": "walk"},
    ("POST", "/api/v1/automation/faq/test"): {"inbox_id": 1, "text": "secret order 42"},
    ("PATCH", "/api/v1/automation/faq/{faq_id}"): {"answer": "walk"},
    ("POST", "/api/v1/automation/flows"): {
        "inbox_id": 1,
        "name": "walk",
        "definition": {"start": "a", "steps": {"a": {"text": "x", "on": {"*": {"answer": "y"}}}}},
    },
    ("PATCH", "/api/v1/automation/flows/{flow_id}"): {"name": "walk"},
    ("PATCH", "/api/v1/quick-replies/{quick_reply_id}"): {"text": "x"},
    ("POST", "/api/v1/quick-replies/{quick_reply_id}/render"): {"conversation_id": 1},
    ("POST", "/api/v1/message-templates"): {
        "inbox_id": 1,
        "name": "walk",
        "language": "en_US",
        "category": "UTILITY",
        "body": "x",
    },
    ("POST", "/api/v1/message-templates/{template_id}/preview"): {"body": []},
    ("POST", "/api/v1/message-templates/{template_id}/send"): {"conversation_id": 1, "body": []},
}


def routes(app: Any) -> list[tuple[str, str, Any]]:
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            assert context.path in MOUNTS, f"unclassified mount {context.path}"
            continue
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                found.append((method, context.path, route))
    return found


async def world(live) -> dict[str, Any]:
    """Data in an inbox the outsiders are not members of, and another person's things."""
    inbox = await create_inbox(live)
    admin_id, admin_token = await create_user(live, email="boss@example.com", role="admin")
    await post_signed(
        live.client,
        inbox["webhook_url"],
        envelope([text_message("14155550001", "wamid.walk", "secret order 42")]),
    )
    await settle(live)
    boss = await sign_in(live, "boss@example.com")
    async with live.runtime.db.session() as session:
        message = await session.scalar(select(Message).where(Message.external_id == "wamid.walk"))
    # (never an HTTP call while holding a session: SQLite has one connection per process)
    conversation = (
        await live.client.get(
            f"/api/v1/conversations/{message.conversation_id}", headers=auth(admin_token)
        )
    ).json()
    async with live.runtime.db.session() as session:
        boss_session = await session.scalar(
            select(UserSession.id).where(UserSession.user_id == admin_id)
        )
        boss_token = await session.scalar(select(ApiToken.id).where(ApiToken.user_id == admin_id))
    await boss.aclose()
    return {
        "conversation_id": message.conversation_id,
        "message_id": message.id,
        "contact_id": conversation["contact_id"],
        "inbox_id": inbox["id"],
        "user_id": admin_id,
        "session_id": boss_session,
        "token_id": boss_token,
        "key": "not-a-webhook-key",
        "slug": "no-such-link",
        "link_id": 1,
        "label_id": 999_999,
        "mention_id": 999_999,
        "rule_id": 999_999,
        "integration_id": 999_999,
        "quick_reply_id": 999_999,
        "faq_id": 999_999,
        "flow_id": 999_999,
        "template_id": 999_999,
        "team_id": 999_999,
    }


def fill(path: str, ids: dict[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"teach the walk about the path parameter {{{name}}} ({path})"
        return str(ids[name])

    return re.sub(r"\{(\w+)\}", one, path)


async def call(
    client: httpx.AsyncClient, method: str, path: str, route: Any, ids: dict[str, Any], **kw: Any
) -> httpx.Response:
    url = fill(path, ids)
    body = None
    if isinstance(route, APIRoute) and route.dependant.body_params:
        is_form = any(
            type(getattr(p, "field_info", None)).__name__ == "Form"
            for p in route.dependant.body_params
        )
        if not is_form:
            assert (method, path) in JSON_BODIES, f"give the walk a valid body for {method} {path}"
            body = JSON_BODIES[(method, path)]
    request = client.build_request(method, url, json=body, **kw)
    response = await client.send(request, stream=True)
    if path in STREAMS and response.status_code == 200:  # it never ends by itself
        chunks = []
        try:
            async with asyncio.timeout(1.0):
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
        except TimeoutError:
            pass
        await response.aclose()
        return httpx.Response(200, headers=response.headers, content=b"".join(chunks))
    await response.aread()
    await response.aclose()
    return response


def no_data(response: httpx.Response, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in response.text, f"leaked {secret!r}"


async def test_every_route_refuses_people_without_access(live):
    ids = await world(live)
    leaks = ["secret order 42", "14155550001", "boss@example.com"]
    everything = routes(live.app)
    assert len(everything) > 60
    for method, path, _route in everything:
        if (method, path) in PUBLIC:
            continue
        assert path.startswith(("/api/", "/account", "/admin", "/logout", "/links", "/inbox")), (
            f"classify {method} {path}: public (PUBLIC, with a reason) or behind sign-in"
        )

    # 1. Nobody signed in: the API says 401, pages send to the sign-in page.
    anonymous = web_client(live)
    for method, path, route in everything:
        if (method, path) in PUBLIC:
            continue
        response = await call(anonymous, method, path, route, ids)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.json()["error"]["code"] == "unauthenticated"
        else:
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/login?next=")
        no_data(response, leaks)

    # 2. An agent of no inbox, with a read+write API token.
    _, token = await create_user(
        live, email="outsider@example.com", role="agent", scopes=("read", "write")
    )
    api_client = web_client(live)
    for method, path, route in everything:
        if (method, path) in PUBLIC or not path.startswith("/api/"):
            continue
        response = await call(api_client, method, path, route, ids, headers=auth(token))
        status = response.status_code
        assert status < 500, (method, path, status, response.text)
        if ((method, path) in SELF and "{" not in path) or (method, path) in CREATES:
            assert status in (200, 201, 204), (method, path, status)
        elif method == "GET" and path in LISTS:
            assert status == 200 and response.json()["items"] == [], (method, path)
        elif method == "GET" and path in STREAMS:
            assert status == 200 and b"data:" not in response.content, (method, path)
        else:
            assert status in (401, 403, 404), (method, path, status, response.text)
        no_data(response, leaks)

    # 3. The same kind of person in a browser session (valid CSRF token on every POST).
    await create_user(live, email="outsider2@example.com", role="agent")
    browser = await sign_in(live, "outsider2@example.com")
    csrf = csrf_of((await browser.get("/account")).text)
    pages = [r for r in everything if not r[1].startswith("/api/") and (r[0], r[1]) not in PUBLIC]
    pages.sort(key=lambda r: r[1] == "/logout")  # sign out last
    for method, path, route in pages:
        data = {"csrf_token": csrf} if method == "POST" else None
        response = await call(browser, method, path, route, ids, **({"data": data} if data else {}))
        status = response.status_code
        assert status < 500, (method, path, status, response.text)
        if (method, path) in SELF and "{" not in path:
            assert status in (200, 303, 401, 409, 422), (method, path, status)
        else:
            assert status in (403, 404), (method, path, status)
        no_data(response, leaks)
    for client in (anonymous, api_client, browser):
        await client.aclose()
