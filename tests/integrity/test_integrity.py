"""Integrity selectors, the periodic task and GET /api/v1/integrity."""

import pytest
from django.conf import settings

from audit.integrity import selectors as integrity, verification
from audit.integrity import tasks
from audit.models import AuditEvent, ChainVerification
from tests.factories import store_events, wire_event

URL = "/api/v1/integrity"


@pytest.fixture
def events(org):
    return store_events(org, *(wire_event() for _ in range(6)))


def test_chain_head_is_the_last_event(org, events):
    head = integrity.chain_head(org=org)
    last = events[-1]
    assert head["seq"] == 6 and head["hash"] == last.chain_hash and head["event_id"] == last.event_id
    assert head["received_at"] == last.received_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_chain_head_of_an_empty_organization(org):
    assert integrity.chain_head(org=org) == {"seq": 0, "hash": "0" * 64, "event_id": None, "received_at": None}


def test_chain_status_before_any_verification_is_unverified(org, events):
    assert integrity.chain_status(org=org, seq=3) == {"state": "unverified", "seq": 3, "verified_at": None, "first_bad_seq": None}


def test_chain_status_after_an_intact_run(org, events):
    run = verification.chain_verification_run(org=org)
    status = integrity.chain_status(org=org, seq=6)
    assert status["state"] == "verified" and status["seq"] == 6
    assert status["verified_at"] == run.finished_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    (newer,) = store_events(org, wire_event())
    assert integrity.chain_status(org=org, seq=newer.seq)["state"] == "unverified"


def test_chain_status_after_a_broken_run(org, events):
    AuditEvent.objects.filter(pk=events[3].pk).update(actor="mallory@company.com")
    verification.chain_verification_run(org=org)
    assert integrity.chain_status(org=org, seq=3)["state"] == "verified"
    assert integrity.chain_status(org=org, seq=4) == {
        "state": "broken", "seq": 4, "verified_at": integrity.chain_status(org=org, seq=4)["verified_at"], "first_bad_seq": 4,
    }
    assert integrity.chain_status(org=org, seq=6)["state"] == "broken"


def test_chain_status_counts_an_earlier_full_run_after_a_partial_one(org, events, django_assert_num_queries):
    verification.chain_verification_run(org=org)
    verification.chain_verification_run(org=org, since=5)
    with django_assert_num_queries(1):
        assert integrity.chain_status(org=org, seq=5)["state"] == "verified"
    with django_assert_num_queries(2):
        assert integrity.chain_status(org=org, seq=2)["state"] == "verified"
    last = integrity.chain_verification_last(org=org)
    with django_assert_num_queries(0):
        assert integrity.chain_status(org=org, seq=6, last=last)["state"] == "verified"


def test_the_periodic_task_verifies_every_organization_with_events(org, other_org, events):
    tasks.verify_chains.delay()
    runs = ChainVerification.objects.all()
    assert [(run.org_id, run.ok, run.trigger, run.verified_through) for run in runs] == [(org.pk, True, "schedule", 6)]
    assert settings.CELERY_BEAT_SCHEDULE["verify-chains"]["task"] == tasks.verify_chains.name


def test_api_shows_the_head_and_the_last_verification(api_client, org, read_key, events, django_assert_num_queries):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    response = api_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "org": "acme",
        "head": {"seq": 6, "hash": events[-1].chain_hash, "event_id": events[-1].event_id,
                 "received_at": events[-1].received_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
        "last_verification": None,
    }
    AuditEvent.objects.filter(pk=events[1].pk).delete()
    verification.chain_verification_run(org=org)
    # The key lookup, the head with its last event, the last verification, the access record.
    with django_assert_num_queries(4):
        body = api_client.get(URL).json()
    last = body["last_verification"]
    assert last["ok"] is False and last["kind"] == "removed"
    assert (last["first_bad_seq"], last["first_bad_event_id"], last["verified_through"]) == (2, None, 1)
    assert "seq 2 missing: removed" in last["message"]


def test_api_is_scoped_to_the_callers_organization(api_client, org, other_org, other_read_key, events):
    verification.chain_verification_run(org=org)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_read_key}")
    body = api_client.get(URL).json()
    assert body["org"] == "globex" and body["head"]["seq"] == 0 and body["last_verification"] is None


def test_api_accepts_a_logged_in_viewer(client, viewer, events):
    client.force_login(viewer)
    assert client.get(URL).json()["head"]["seq"] == 6


def test_api_needs_a_read_key(api_client, ingest_key):
    assert api_client.get(URL).status_code == 401
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
    assert api_client.get(URL).status_code == 403


def _render(org, seqs):
    from django.template import Context, Template

    template = Template("{% load lens %}{% for seq in seqs %}{% chain_status_badge seq %}|{% endfor %}")
    return template.render(Context({"org": org, "seqs": seqs})).split("|")[:-1]


def test_status_badges_read_the_last_verification_once_per_page(org, events, django_assert_num_queries):
    with django_assert_num_queries(1):
        badges = _render(org, [1, 6])
    assert all("not yet verified · seq" in badge for badge in badges)
    AuditEvent.objects.filter(pk=events[4].pk).update(error="tampered")
    verification.chain_verification_run(org=org)
    with django_assert_num_queries(1):
        verified, broken, after = _render(org, [4, 5, 6])
    assert 'class="badge chain-status chain-verified o-success"' in verified and "verified · seq 4" in verified
    assert "chain broken · seq 5" in broken and "broken at seq 5" in broken and "chain broken · seq 6" in after


def test_event_and_trace_pages_show_the_chain_status_at_one_query_per_page(client, viewer, org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    events = store_events(org, *(wire_event(trace_id="trace-x") for _ in range(3)))
    verification.chain_verification_run(org=org)
    (later,) = store_events(org, wire_event(trace_id="trace-x"))
    client.force_login(viewer)
    page = client.get(f"/events/{events[1].event_id}/").content.decode()
    assert "verified · seq 2" in page
    with CaptureQueriesContext(connection) as few:
        page = client.get("/traces/trace-x/").content.decode()
    assert page.count(">verified · seq") == 3 and "not yet verified · seq 4" in page
    store_events(org, *(wire_event(trace_id="trace-x") for _ in range(20)))
    with CaptureQueriesContext(connection) as many:
        assert client.get("/traces/trace-x/").content.decode().count("chain-status") == 24
    assert len(many) == len(few)
