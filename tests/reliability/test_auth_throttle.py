"""Failed API-key attempts are throttled per client address: 429 with Retry-After."""

import pytest
from django.test import override_settings

from audit.accounts import throttle

URL = "/api/v1/audit-events"


@pytest.fixture
def get(api_client):
    def _get(key, address="10.0.0.1"):
        return api_client.get(URL, HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR=address)

    return _get


@pytest.fixture
def frozen_clock(monkeypatch):
    clock = {"now": 1_800_000_000.0}  # the start of a one-minute window
    monkeypatch.setattr(throttle, "_now", lambda: clock["now"])
    return clock


@override_settings(LENS_AUTH_FAILURE_RATE="3/min")
def test_past_the_limit_key_attempts_from_that_address_get_429(get, read_key, frozen_clock):
    assert [get("lens_bad_guess").status_code for _ in range(3)] == [401, 401, 401]
    frozen_clock["now"] += 20
    blocked = get("lens_bad_guess")
    assert blocked.status_code == 429
    assert blocked["Retry-After"] == "40"
    assert "failed API-key attempts" in blocked.json()["detail"]
    # Even a good key waits: no key is looked up for a blocked address.
    assert get(read_key).status_code == 429
    # Another address is not affected.
    assert get("lens_bad_guess", address="10.0.0.2").status_code == 401
    assert get(read_key, address="10.0.0.2").status_code == 200
    # The next window starts afresh.
    frozen_clock["now"] += 40
    assert get(read_key).status_code == 200


@override_settings(LENS_AUTH_FAILURE_RATE="3/min")
def test_every_kind_of_bad_header_counts_and_good_keys_do_not(api_client, read_key, frozen_clock):
    for _ in range(10):
        assert api_client.get(URL, HTTP_AUTHORIZATION=f"Bearer {read_key}").status_code == 200
    assert api_client.get(URL, HTTP_AUTHORIZATION="Bearer two parts").status_code == 401
    assert api_client.get(URL, HTTP_AUTHORIZATION="Bearer l\u00e9ns".encode().decode("latin-1")).status_code == 401
    assert api_client.get(URL, HTTP_AUTHORIZATION=f"Bearer {read_key}x").status_code == 401
    assert api_client.get(URL, HTTP_AUTHORIZATION=f"Bearer {read_key}").status_code == 429


def test_the_default_rate_is_a_setting():
    from django.conf import settings

    assert throttle.failure_rate(settings.LENS_AUTH_FAILURE_RATE) == (30, 60)
    assert settings.LENS_AUTH_FAILURE_RATE == "30/min"


@override_settings(LENS_AUTH_FAILURE_RATE="3/min")
def test_a_forged_forwarded_for_header_neither_escapes_the_throttle_nor_breaks_the_access_log(
    api_client, read_key, org, frozen_clock
):
    from audit.models import AccessRecord

    def get(key, forwarded):
        return api_client.get(URL, HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=forwarded)

    assert [get("lens_bad_guess", f"203.0.113.{n}").status_code for n in range(3)] == [401, 401, 401]
    assert get("lens_bad_guess", "198.51.100.7").status_code == 429
    frozen_clock["now"] += 60
    assert get(read_key, "1.2.3.4, 5.6.7.8").status_code == 200
    assert get(read_key, "unknown").status_code == 200
    assert set(AccessRecord.objects.filter(org=org).values_list("address", flat=True)) == {"10.0.0.9"}
