"""The password policy and hashing."""

from __future__ import annotations

import pytest

from tests.helpers import create_user
from tests.web.client import PASSWORD, post_form, sign_in, submit_login, web_client
from wadesk.accounts.passwords import (
    WeakPassword,
    check_password,
    common_passwords,
    hash_password,
    verify_password,
)


def test_the_common_password_list_ships_with_the_package():
    listed = common_passwords()
    assert len(listed) > 19_000
    assert {"password", "123456", "qwerty", "iloveyou"} <= listed


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short", "at least 10"),
        ("1234567890", "common"),
        ("qwertyuiop", "common"),
        ("Password2024!", "common"),  # a listed password with digits and symbols around it
        ("!!iloveyou!!", "common"),
        ("aaaaaaaaaaaa", "repeated"),
        ("abcdefghijkl", "sequential"),
        ("maria.souza1990", "name"),
        ("wadesk-2026!", "name"),
        ("x" * 129, "at most"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password, why):
    with pytest.raises(WeakPassword) as caught:
        check_password(password, min_length=10, email="maria.souza@example.com", name="Maria Souza")
    message = str(caught.value).lower()
    assert why in message or "common" in message


@pytest.mark.parametrize(
    "password", ["correct horse battery", "tangerine-kayak-vault", "Zebra stripes at dawn 7"]
)
def test_good_passwords_pass(password):
    check_password(password, min_length=10, email="maria@example.com", name="Maria Souza")


def test_hashes_are_argon2id_salted_and_verify():
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first.startswith("$argon2id$") and first != second
    assert verify_password(first, "correct horse battery")
    assert not verify_password(first, "correct horse batterY")
    assert not verify_password(None, "anything")
    assert not verify_password("not-a-hash", "anything")


async def test_changing_my_password_checks_the_policy_and_ends_my_other_sessions(live):
    await create_user(live, email="ana@example.com", role="agent")
    me = await sign_in(live, "ana@example.com")
    other = await sign_in(live, "ana@example.com")
    weak = await post_form(
        me,
        "/account/password",
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "password123",
            "confirm_password": "password123",
        },
    )
    assert weak.status_code == 422 and "most common passwords" in weak.text
    wrong = await post_form(
        me,
        "/account/password",
        "/account/password",
        {
            "current_password": "not my password",
            "new_password": "tangerine kayak vault",
            "confirm_password": "tangerine kayak vault",
        },
    )
    assert wrong.status_code == 422 and "current password is not right" in wrong.text
    changed = await post_form(
        me,
        "/account/password",
        "/account/password",
        {
            "current_password": PASSWORD,
            "new_password": "tangerine kayak vault",
            "confirm_password": "tangerine kayak vault",
        },
    )
    assert changed.status_code == 303
    assert (await me.get("/account")).status_code == 200
    assert (await other.get("/account")).status_code == 303  # signed out
    fresh = web_client(live)
    assert (await submit_login(fresh, "ana@example.com", PASSWORD)).status_code == 401
    assert (
        await submit_login(fresh, "ana@example.com", "tangerine kayak vault")
    ).status_code == 303
    for client in (me, other, fresh):
        await client.aclose()
