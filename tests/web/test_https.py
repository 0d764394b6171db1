"""Behind https: Secure __Host- cookies and HSTS."""

from __future__ import annotations

import httpx

from tests.helpers import create_user
from tests.web.client import PASSWORD, csrf_of
from wadesk.app import create_app
from wadesk.config import Settings


async def test_behind_https_the_cookie_is_secure_and_hsts_is_sent(live, tmp_path):
    await create_user(live, email="ana@example.com", role="agent")
    settings = Settings(
        var_dir=tmp_path / "https", base_url="https://desk.example.com", simulator_enabled=False
    )
    app = create_app(settings, run_workers=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4242))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="https://desk.example.com"
        ) as client:
            page = await client.get("/login")
            assert page.headers["strict-transport-security"].startswith("max-age=31536000")
            response = await client.post(
                "/login",
                data={
                    "email": "ana@example.com",
                    "password": PASSWORD,
                    "csrf_token": csrf_of(page.text),
                },
            )
            assert response.status_code == 303, response.text
            cookie = next(
                v
                for k, v in response.headers.multi_items()
                if k == "set-cookie" and v.startswith("__Host-wadesk_session=")
            )
            lowered = cookie.lower()
            assert "secure" in lowered and "httponly" in lowered and "samesite=lax" in lowered
            assert "domain=" not in lowered and "path=/" in lowered
            account = await client.get("/account")
            assert account.status_code == 200 and "203.0.113.7" in account.text
    finally:
        await app.state.runtime.close()
