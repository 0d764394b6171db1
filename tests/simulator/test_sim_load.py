"""run_load against the recording receiver."""

from __future__ import annotations

import pytest

from wadesk.channels.simulator.load import run_load

from .conftest import APP_SECRET, Harness


async def test_counts_batches_and_duplicates(harness: Harness) -> None:
    seen: list[int] = []
    report = await run_load(
        webhook_url=harness.number.webhook_url,
        app_secret=APP_SECRET,
        phone_number_id=harness.number.phone_number_id,
        display_phone_number=harness.number.display_phone_number,
        messages=25,
        customers=4,
        rate=2000,
        batch=3,
        duplicates=1.0,
        progress=seen.append,
    )
    assert report.sent == 25 and report.accepted == 25 and report.failed == 0
    assert report.deliveries == 9
    assert report.duplicates_sent == 9
    assert report.retries == 0 and report.rejected_by_status == {}
    assert 0 < report.p50_ms <= report.p99_ms <= report.max_ms
    assert sorted(seen)[-1] == 25
    messages = harness.receiver.messages()
    assert len(messages) == 50  # every delivery twice
    assert len({m["id"] for m in messages}) == 25
    assert {m["from"] for m in messages} == {str(5511900000000 + i) for i in range(4)}
    assert max(len(d["entry"][0]["changes"]) for d in harness.receiver.deliveries) == 3
    assert report.to_dict()["sent"] == 25


async def test_retries_non_200(harness: Harness) -> None:
    harness.receiver.answers = [500, 503]
    report = await run_load(
        webhook_url=harness.number.webhook_url,
        app_secret=APP_SECRET,
        phone_number_id=harness.number.phone_number_id,
        display_phone_number=harness.number.display_phone_number,
        messages=3,
        customers=1,
        rate=1000,
        concurrency=1,
    )
    assert report.accepted == 3
    assert report.retries == 2
    assert report.rejected_by_status == {"500": 1, "503": 1}


async def test_without_retries_failures_are_reported(harness: Harness) -> None:
    harness.receiver.answers = [500]
    report = await run_load(
        webhook_url=harness.number.webhook_url,
        app_secret="wrong-secret",
        phone_number_id=harness.number.phone_number_id,
        display_phone_number=harness.number.display_phone_number,
        messages=2,
        customers=2,
        rate=1000,
        retries=False,
    )
    assert report.accepted == 0 and report.failed == 2
    assert report.rejected_by_status == {"401": 2}


async def test_rate_paces_deliveries(harness: Harness) -> None:
    report = await run_load(
        webhook_url=harness.number.webhook_url,
        app_secret=APP_SECRET,
        phone_number_id=harness.number.phone_number_id,
        display_phone_number=harness.number.display_phone_number,
        messages=6,
        customers=2,
        rate=20,
    )
    assert report.elapsed_s >= 0.25  # 6 messages at 20/s: the last leaves after 0.25 s


@pytest.mark.parametrize(
    "bad",
    [{"messages": 0}, {"customers": 0}, {"rate": 0}, {"duplicates": 1.5}, {"batch": 0}],
)
async def test_rejects_bad_arguments(bad: dict[str, float]) -> None:
    arguments = {
        "webhook_url": "http://127.0.0.1:9/hook",
        "app_secret": "s",
        "phone_number_id": "1",
        "display_phone_number": "1",
        "messages": 1,
        "customers": 1,
        "rate": 1.0,
        **bad,
    }
    with pytest.raises(ValueError):
        await run_load(**arguments)  # type: ignore[arg-type]
