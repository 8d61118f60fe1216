"""The organization's integrity page and its "verify now" button."""

import re

import pytest
from django.test import Client

from audit.accounts import services
from audit.integrity import checkpoints, verification
from audit.models import AuditEvent, ChainVerification, Checkpoint
from tests.factories import store_events, wire_event

PAGE, VERIFY = "/integrity/", "/integrity/verify/"


@pytest.fixture
def admin(org):
    return services.user_create(org=org, username="admin", password="admin-pass-123", role="admin")


@pytest.fixture
def events(org):
    return store_events(org, *(wire_event() for _ in range(4)))


def _csrf_client(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _token(page) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)


def test_the_page_needs_a_login(client, db):
    assert client.get(PAGE)["Location"].startswith("/login/?next=")


def test_a_viewer_sees_head_key_checkpoints_and_the_last_verification(user_client, org, events, django_assert_num_queries):
    checkpoint = checkpoints.checkpoint_create(org=org, reason="export")
    verification.chain_verification_run(org=org)
    # Session, user, membership; the head; the last verification; the keys; the checkpoints;
    # the retention panel (audit/retention/selectors.py).
    with django_assert_num_queries(8):
        page = user_client.get(PAGE)
    html = page.content.decode()
    assert page.status_code == 200 and 'aria-current="page">Integrity<' in html
    assert checkpoint.signing_key.key_id in html and checkpoint.signing_key.public_key in html
    assert checkpoint.chain_hash in html and ">export<" in html
    assert "chain intact: seq 1–4" in html and "Verify now" not in html


def test_a_broken_chain_is_shown_with_the_event_that_broke_it(user_client, org, events):
    AuditEvent.objects.filter(pk=events[2].pk).update(actor="mallory@company.com")
    verification.chain_verification_run(org=org)
    html = user_client.get(PAGE).content.decode()
    assert "broken" in html and f'href="/events/{events[2].event_id}/"' in html and "changed at seq 3" in html


def test_an_admin_verifies_now_with_a_csrf_protected_post(org, admin, events):
    client = _csrf_client(admin)
    page = client.get(PAGE)
    assert "Verify now" in page.content.decode()
    assert client.post(VERIFY).status_code == 403  # no CSRF token
    assert not ChainVerification.objects.exists()
    response = client.post(VERIFY, {"csrfmiddlewaretoken": _token(page)})
    assert response.status_code == 302 and response["Location"] == PAGE
    run = ChainVerification.objects.get()
    assert (run.trigger, run.ok, run.verified_through) == ("manual", True, 4)
    assert Checkpoint.objects.get().reason == "schedule"  # the cycle signs the head first
    html = client.get(PAGE).content.decode()
    assert "Verification started" in html and "chain intact" in html


def test_only_admins_may_verify_now(user_client, events):
    assert user_client.post(VERIFY).status_code == 403
    assert user_client.get(VERIFY).status_code == 405
    assert not ChainVerification.objects.exists()


def test_another_organization_sees_only_its_own(client, org, other_org, events):
    checkpoint = checkpoints.checkpoint_create(org=org, reason="export")
    client.force_login(services.user_create(org=other_org, username="other", password="other-pass-123"))
    html = client.get(PAGE).content.decode()
    assert checkpoint.chain_hash not in html and checkpoint.signing_key.key_id not in html
    assert "No checkpoint yet" in html and "No verification has run yet" in html
