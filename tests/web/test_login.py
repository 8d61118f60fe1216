"""The login form is throttled per username and per address, with a clear message."""

import pytest

from audit.accounts import throttle

RIGHT = {"username": "viewer", "password": "viewer-pass-123"}
WRONG = {"username": "viewer", "password": "guess"}


@pytest.fixture(autouse=True)
def _fast_hashes(settings):
    """Before the `viewer` fixture makes the login: dozens of password checks stay quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clock(monkeypatch):
    now = {"t": 1_800_000_000.0}  # the start of an hour's window
    monkeypatch.setattr(throttle, "_now", lambda: now["t"])
    return now


def _post(client, form, address="10.0.0.1"):
    return client.post("/login/", form, REMOTE_ADDR=address)


def test_forty_wrong_passwords_then_the_right_one_is_still_refused(client, viewer, clock):
    answers = [_post(client, WRONG).status_code for _ in range(40)]
    assert answers[:10] == [200] * 10 and set(answers[10:]) == {429}
    refused = _post(client, RIGHT)
    assert refused.status_code == 429 and int(refused["Retry-After"]) == 3600
    assert "Too many failed logins for this username or from this address" in refused.content.decode()
    assert "Try again in 60 minutes" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    clock["t"] += 3600  # the next window
    assert _post(client, RIGHT).status_code == 302


def test_the_username_is_throttled_from_any_address(client, viewer, clock):
    for n in range(10):
        _post(client, {**WRONG, "username": "Viewer " if n % 2 else "viewer"}, address=f"10.0.1.{n}")
    assert _post(client, RIGHT, address="10.0.2.1").status_code == 429


def test_an_address_is_throttled_for_every_username(client, viewer, clock, settings):
    settings.LENS_LOGIN_FAILURES_PER_ADDRESS = "5/h"
    for n in range(5):
        _post(client, {"username": f"someone-{n}", "password": "x"})
    assert _post(client, RIGHT).status_code == 429
    assert _post(client, RIGHT, address="10.0.0.2").status_code == 302


def test_successful_logins_do_not_count(client, viewer, clock):
    for _ in range(12):
        assert _post(client, RIGHT).status_code == 302
        client.logout()
