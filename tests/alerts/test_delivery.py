"""Delivery through the outbox to real local receivers: signatures, retries with the same
webhook-id, pause and resume, streams in order, auto-pause, giving up."""

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.alerts import delivery, services, tasks
from audit.alerts.models import Delivery, Destination
from tests.factories import store_events, wire_event

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def standard_webhooks_valid(secret: str, headers: dict, body: bytes) -> bool:
    """The Standard Webhooks check written from the spec, not with the signing package."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in headers["webhook-signature"].split() if part.startswith("v1,")]
    return any(hmac.compare_digest(expected, signature) for signature in offered)


@pytest.fixture
def webhook(org, receiver):
    return services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url, secret=SECRET)[0]


def deny(**fields):
    return wire_event(decision="deny", outcome="denied", status_code=403, **fields)


def run(org):
    """What the worker does after a batch is stored, and what beat's catch-up does."""
    tasks.alerts_match(org_id=org.pk)
    tasks.alerts_catch_up()


def make_due():
    Delivery.objects.filter(status="pending").update(next_attempt_at=timezone.now())


def test_each_matching_event_is_one_signed_post_with_the_event(org, webhook, receiver):
    store_events(org, wire_event(id="evt-a1"), wire_event(id="evt-a2"), wire_event(id="evt-a3"))
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=webhook)
    store_events(org, deny(id="evt-d3", tool="delete_repo"), wire_event(id="evt-a4"))
    run(org)
    [request] = receiver.requests
    assert standard_webhooks_valid(SECRET, request.headers, request.body)
    body = json.loads(request.body)
    assert body["type"] == "lens.alert" and body["rule"]["name"] == "Deletes"
    assert body["event"]["id"] == "evt-d3" and body["event"]["tool"] == "delete_repo" and body["event"]["seq"] == 4
    assert request.headers["webhook-id"] == Delivery.objects.get(event_id="evt-d3").message_id
    assert Delivery.objects.get(event_id="evt-d3").status == "delivered"


def test_a_rule_matches_only_events_stored_after_it_was_made(org, webhook, receiver):
    store_events(org, deny(id="old", tool="delete_repo"))
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=webhook)
    store_events(org, deny(id="new", tool="delete_repo"))
    run(org)
    assert [json.loads(r.body)["event"]["id"] for r in receiver.requests] == ["new"]


def test_an_outage_is_retried_with_the_same_webhook_id_until_it_recovers(org, webhook, receiver):
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=webhook)
    receiver.status = 503
    store_events(org, *(deny(id=f"evt-{n}", tool="delete_repo") for n in range(3)))
    run(org)
    assert len(receiver.requests) == 1  # the destination is down: the others wait, unattempted
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}
    first = Delivery.objects.get(event_id="evt-0")
    assert first.attempts == 1 and first.last_status_code == 503 and first.next_attempt_at > timezone.now()
    assert Destination.objects.get().failing_since is not None

    run(org)  # nothing is due yet
    assert len(receiver.requests) == 1

    receiver.status = 200
    make_due()
    run(org)
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert ids[0] == ids[1] == first.message_id  # the retry carries the same webhook-id
    assert sorted(set(ids)) == sorted(Delivery.objects.values_list("message_id", flat=True))
    assert all(standard_webhooks_valid(SECRET, r.headers, r.body) for r in receiver.requests)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert list(first.attempt_log.values_list("status_code", flat=True)) == [503, 200]
    assert Destination.objects.get().failing_since is None


def test_connection_refused_is_an_attempt_without_an_answer(org, settings):
    settings.LENS_DESTINATION_ALLOWED_HOSTS = ["127.0.0.1"]
    from tests.alerts.receivers import receiver_start, receiver_stop

    closed = receiver_start()
    url = closed.url
    receiver_stop(closed)  # nothing listens there now
    destination, _ = services.destination_create(org=org, name="Gone", kind="webhook", url=url, secret=SECRET)
    services.rule_create(org=org, name="All deletes", query="delete_repo", destination=destination)
    store_events(org, deny(tool="delete_repo"))
    run(org)
    attempt = Delivery.objects.get().attempt_log.get()
    assert attempt.status_code is None and "ConnectError" in attempt.error


def test_a_paused_destination_buffers_and_catches_up_in_order(org, webhook, receiver):
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=webhook)
    services.destination_pause(destination=webhook)
    store_events(org, *(deny(id=f"evt-{n}", tool="delete_repo") for n in range(5)))
    run(org)
    assert receiver.requests == [] and Delivery.objects.filter(status="pending").count() == 5
    services.destination_resume(destination=webhook)
    run(org)
    assert [json.loads(r.body)["event"]["id"] for r in receiver.requests] == [f"evt-{n}" for n in range(5)]


def test_a_stream_sends_every_event_in_ordered_batches(org, receiver, settings):
    settings.LENS_STREAM_BATCH = 4
    destination, secret = services.destination_create(org=org, name="SIEM", kind="webhook", url=receiver.url)
    assert secret.startswith("whsec_")  # generated, shown once
    services.rule_create(org=org, name="Everything", query="*", destination=destination)
    store_events(org, *(wire_event(id=f"evt-{n}") for n in range(10)))
    receiver.statuses = [500]  # the first batch fails once: the later ones must wait for it
    run(org)
    assert len(receiver.requests) == 1
    make_due()
    run(org)
    batches = [json.loads(r.body) for r in receiver.requests]
    assert [b["type"] for b in batches] == ["lens.stream"] * 4
    assert [[e["id"] for e in b["events"]] for b in batches[1:]] == [
        [f"evt-{n}" for n in range(0, 4)], [f"evt-{n}" for n in range(4, 8)], ["evt-8", "evt-9"],
    ]
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    assert all(standard_webhooks_valid(secret, r.headers, r.body) for r in receiver.requests)


def test_a_day_of_failures_pauses_the_destination_with_the_reason(org, webhook, receiver):
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=webhook)
    receiver.status = 502
    store_events(org, deny(tool="delete_repo"))
    run(org)
    Destination.objects.update(failing_since=timezone.now() - timedelta(hours=25))
    make_due()
    run(org)
    destination = Destination.objects.get()
    assert destination.paused and "every delivery failed for 24 h" in destination.paused_reason
    assert "HTTP 502" in destination.paused_reason
    assert Delivery.objects.get().status == "pending"  # kept, not dropped
    receiver.status = 200
    services.destination_resume(destination=destination)
    run(org)
    assert Delivery.objects.get().status == "delivered"


def test_a_message_rejected_for_a_day_while_others_arrive_is_given_up(org, webhook, receiver):
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=webhook)
    receiver.status = 400
    store_events(org, deny(id="poison", tool="delete_repo"))
    run(org)
    Delivery.objects.update(retry_until=timezone.now() - timedelta(seconds=1))
    make_due()
    run(org)
    poison = Delivery.objects.get(event_id="poison")
    assert poison.status == "failed" and poison.attempts == 2 and poison.next_attempt_at is None
    assert not Destination.objects.get().paused


def test_a_redirect_is_not_followed(org, webhook, receiver):
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=webhook)
    receiver.status, receiver.location = 302, "http://10.0.0.1/internal"
    store_events(org, deny(tool="delete_repo"))
    run(org)
    assert len(receiver.requests) == 1
    attempt = Delivery.objects.get().attempt_log.get()
    assert attempt.status_code == 302 and "not followed" in attempt.error


def test_send_test_posts_a_signed_test_message_and_records_it(org, webhook, receiver):
    sent = services.destination_test(destination=webhook)
    [request] = receiver.requests
    assert standard_webhooks_valid(SECRET, request.headers, request.body)
    assert json.loads(request.body)["type"] == "lens.test"
    assert (sent.status, sent.attempts, sent.last_status_code, sent.rule) == ("delivered", 1, 200, None)


def test_the_lease_keeps_a_second_sender_off_a_destination(org, webhook, receiver):
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=webhook)
    services.destination_pause(destination=webhook)
    store_events(org, deny(tool="delete_repo"))
    run(org)
    services.destination_resume(destination=webhook)
    Destination.objects.update(lease_owner="someone", lease_until=timezone.now() + timedelta(seconds=60))
    assert delivery.destination_deliver(destination_id=webhook.pk, budget_seconds=5) is False
    assert receiver.requests == []
    Destination.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # the holder died
    delivery.destination_deliver(destination_id=webhook.pk, budget_seconds=5)
    assert len(receiver.requests) == 1


def test_retry_delay_grows_with_jitter_and_a_ceiling():
    delays = [delivery.retry_delay(n).total_seconds() for n in range(1, 20)]
    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20 and 20 <= delays[2] <= 40
    assert all(1800 <= d <= 3600 for d in delays[10:])
