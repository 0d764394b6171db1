"""Creating links is rate-limited per person, with the state in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.helpers import auth, create_user
from tests.links.conftest import BR_NUMBER, new_link
from wadesk.db import utcnow
from wadesk.links.models import Link


@pytest.fixture
def settings(settings):
    settings.links_create_per_hour = 3
    return settings


async def test_creation_is_rate_limited_per_person(live, admin):
    for i in range(3):
        await new_link(live, admin, slug=f"quick-{i}")
    limited = await live.client.post("/api/v1/links", json={"phone": BR_NUMBER}, headers=admin)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    retry = int(limited.headers["retry-after"])
    assert 3500 < retry <= 3600 and limited.json()["error"]["retry_after"] == retry
    # Another person has their own allowance; the limit lives in the database.
    _, other = await create_user(live, email="other@example.com", role="supervisor")
    await new_link(live, auth(other))
    # An hour later the first person may create again.
    async with live.runtime.db.session() as session:
        await session.execute(
            update(Link).values(created_at=utcnow() - timedelta(hours=1, seconds=1))
        )
    await new_link(live, admin)
