"""A cookie-keeping HTTP client that signs in through the real pages, like a browser."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pyotp

PASSWORD = "correct horse battery"  # tests.helpers.create_user's password
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def next_code(secret: str) -> str:
    """The code of the next 30-second step (accepted: one step of clock drift). The current
    step's code was spent by the enrolment, and a code works only once."""
    return str(pyotp.TOTP(secret).at(time.time() + 30))


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def manual_key_of(html: str) -> str:
    match = re.search(r'id="manual-key">([A-Z2-7 ]+)<', html)
    assert match, "no manual key on the page"
    return match.group(1).replace(" ", "")


def web_client(
    live: Any, *, user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0"
) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=live.base_url, timeout=10, headers={"User-Agent": user_agent})


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, Any]
) -> httpx.Response:
    """GET the page holding the form, then POST the form with its CSRF token."""
    html = (await client.get(page)).text
    return await client.post(action, data={"csrf_token": csrf_of(html), **data})


async def submit_login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next_url: str = ""
) -> httpx.Response:
    page = await client.get("/login")
    return await client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "csrf_token": csrf_of(page.text),
            "next": next_url,
        },
    )


async def sign_in(
    live: Any, email: str, password: str = PASSWORD, *, totp_secret: str | None = None, **kw: Any
) -> httpx.AsyncClient:
    client = web_client(live, **kw)
    response = await submit_login(client, email, password)
    assert response.status_code == 303, response.text
    if response.headers["location"].startswith("/login/mfa"):
        assert totp_secret, "this account has MFA: pass totp_secret"
        page = await client.get(response.headers["location"])
        response = await client.post(
            "/login/mfa",
            data={"code": next_code(totp_secret), "csrf_token": csrf_of(page.text)},
        )
        assert response.status_code == 303, response.text
    return client


async def enrol_mfa(client: httpx.AsyncClient) -> tuple[str, list[str]]:
    """Turn on TOTP from the set-up page; returns the secret and the recovery codes."""
    page = await client.get("/account/mfa/setup")
    assert page.status_code == 200, page.text
    secret = manual_key_of(page.text)
    done = await client.post(
        "/account/mfa/setup",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_of(page.text)},
    )
    assert done.status_code == 200, done.text
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", done.text)
    assert len(codes) == 10
    return secret, codes
