"""GET /api/v1/integrity/keys and /api/v1/integrity/checkpoints (SPEC §10)."""

import pytest

from audit.events.wire import format_timestamp
from audit.integrity import checkpoints, signatures
from audit.integrity.keys import signing_key_rotate
from tests.factories import store_events, wire_event

KEYS = "/api/v1/integrity/keys"
CHECKPOINTS = "/api/v1/integrity/checkpoints"


@pytest.fixture
def signed(org):
    """Five checkpoints of a growing chain, the third after a key rotation."""
    made = []
    for n in range(5):
        store_events(org, wire_event())
        if n == 2:
            signing_key_rotate(org=org)
        made.append(checkpoints.checkpoint_create(org=org, reason="schedule"))
    return made


def test_keys_in_the_spec_shape_the_live_one_first(warm, org, signed):
    body = warm(KEYS).json()
    assert [key["retired_at"] is None for key in body] == [True, False]
    live, retired = body
    assert set(live) == {"key_id", "algorithm", "public_key", "created_at", "retired_at"}
    assert live["algorithm"] == "ed25519" and live["key_id"] == signed[-1].signing_key.key_id
    assert retired["key_id"] == signed[0].signing_key.key_id and retired["retired_at"].endswith("Z")
    # Every checkpoint verifies with the key it names, from the API's answers alone.
    public = {key["key_id"]: signatures.public_key_from_base64(key["public_key"]) for key in body}
    for checkpoint in warm(CHECKPOINTS).json()["results"]:
        message = signatures.checkpoint_message(checkpoint)
        assert signatures.signature_valid(public[checkpoint["key_id"]], message, checkpoint["signature"])


def test_checkpoints_newest_first_a_page_at_a_time(warm, org, signed, django_assert_num_queries):
    # The key lookup, the page (checkpoints with their organization and key).
    with django_assert_num_queries(2):
        first = warm(CHECKPOINTS, {"page_size": 2}).json()
    assert [item["seq"] for item in first["results"]] == [5, 4] and first["previous"] is None
    newest = signed[-1]
    assert first["results"][0] == {
        "org": "acme", "seq": 5, "chain_hash": newest.chain_hash, "signed_at": format_timestamp(newest.signed_at),
        "key_id": newest.signing_key.key_id, "previous": signed[-2].digest, "reason": "schedule",
        "signature": newest.signature,
    }
    second = warm(first["next"]).json()
    third = warm(second["next"]).json()
    assert [item["seq"] for item in second["results"] + third["results"]] == [3, 2, 1] and third["next"] is None


def test_another_organization_sees_none_of_it(api_client, other_read_key, signed):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_read_key}")
    assert api_client.get(KEYS).json() == []
    assert api_client.get(CHECKPOINTS).json()["results"] == []


def test_a_viewer_session_reads_them(user_client, signed):
    assert len(user_client.get(KEYS).json()) == 2 and len(user_client.get(CHECKPOINTS).json()["results"]) == 5


@pytest.mark.parametrize("url", [KEYS, CHECKPOINTS])
def test_they_need_a_read_key(api_client, ingest_key, url):
    assert api_client.get(url).status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
    assert api_client.get(url).status_code == 403


def test_bad_parameters_are_400s(get, signed):
    assert "bogus" in get(CHECKPOINTS, {"bogus": "1"}).json()["errors"]
    assert "cursor" in get(CHECKPOINTS, {"cursor": "nonsense"}).json()["errors"]
    assert get(KEYS, {"page_size": "2"}).status_code == 400
