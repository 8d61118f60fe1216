"""The worker half of ingestion: idempotent, atomic, safe to retry."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError

from audit.accounts import services
from audit.ingest import outbox, store, trace_summaries
from audit.models import AuditEvent, PendingBatch, TraceSummary
from audit.ingest.tasks import ingest_events
from audit.ingest.door import validate_event
from tests.factories import wire_event

RECEIVED = "2026-11-23T09:30:00.000000Z"


def clean_batch(count, trace_id="trace-1"):
    return [validate_event(wire_event(trace_id=trace_id), max_bytes=1 << 20)[0] for _ in range(count)]


def test_redelivered_batch_is_stored_once(org):
    batch = clean_batch(50)
    first = store.events_ingest(org_id=org.pk, events=batch, received_at=RECEIVED)
    again = store.events_ingest(org_id=org.pk, events=batch, received_at=RECEIVED)
    assert (first.stored, again.stored, again.duplicates) == (50, 0, 50)
    assert AuditEvent.objects.filter(org=org).count() == 50
    assert TraceSummary.objects.get(org=org).calls == 50
    org.refresh_from_db()
    assert org.chain_seq == 50


def test_failure_after_part_of_the_write_leaves_nothing_then_retry_stores_all_once(org, monkeypatch):
    """The events are inserted, then the summary upsert fails: the whole batch rolls back."""
    batch = clean_batch(30)
    real_upsert = trace_summaries.trace_summaries_upsert
    calls = []

    def flaky_upsert(**kwargs):
        calls.append(1)
        assert AuditEvent.objects.filter(org=org).count() == 30  # the rows are written at this point
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_upsert(**kwargs)

    monkeypatch.setattr(store, "trace_summaries_upsert", flaky_upsert)
    with pytest.raises(OperationalError):
        store.events_ingest(org_id=org.pk, events=batch, received_at=RECEIVED)
    assert AuditEvent.objects.filter(org=org).count() == 0
    org.refresh_from_db()
    assert org.chain_seq == 0

    store.events_ingest(org_id=org.pk, events=batch, received_at=RECEIVED)
    assert AuditEvent.objects.filter(org=org).count() == 30
    assert TraceSummary.objects.get(org=org).calls == 30


def _failing_upsert(monkeypatch, failures):
    """Make the trace-summary upsert fail `failures` times, after the rows were inserted."""
    real_upsert = trace_summaries.trace_summaries_upsert
    remaining = iter([True] * failures + [False] * 100)

    def flaky_upsert(**kwargs):
        if next(remaining):
            raise OperationalError("could not connect to server")
        return real_upsert(**kwargs)

    monkeypatch.setattr(store, "trace_summaries_upsert", flaky_upsert)


def test_task_retries_a_database_error_until_every_event_lands_once(org, monkeypatch):
    _failing_upsert(monkeypatch, failures=2)
    # As in a worker: a retry re-runs the task instead of raising to the caller.
    monkeypatch.setitem(ingest_events.app.conf, "task_eager_propagates", False)
    batch = PendingBatch.objects.create(org=org, events=clean_batch(20, trace_id="t"), received_at=RECEIVED)
    result = ingest_events.apply(kwargs={"batch_id": batch.pk})
    assert result.successful()
    assert AuditEvent.objects.filter(org=org).count() == 20
    assert TraceSummary.objects.get(org=org, trace_id="t").calls == 20
    assert not PendingBatch.objects.exists()  # stored and deleted in one transaction


def test_in_process_database_outage_is_503_and_the_resend_lands_once(org, ingest_key, api_client, monkeypatch):
    _failing_upsert(monkeypatch, failures=1)
    body = json.dumps([wire_event(trace_id="t") for _ in range(20)])

    def send():
        return api_client.post(
            "/api/v1/audit-events", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {ingest_key}"
        )

    outage = send()
    assert outage.status_code == 503 and outage["Retry-After"]
    assert AuditEvent.objects.filter(org=org).count() == 0
    assert not PendingBatch.objects.exists()  # a 503 keeps nothing behind for the sweep
    assert send().status_code == 202
    assert AuditEvent.objects.filter(org=org).count() == 20
    assert TraceSummary.objects.get(org=org, trace_id="t").calls == 20


def test_commands_create_key_user_and_demo(db, capsys):
    call_command("create_api_key", org="initech", scopes="ingest,read", name="gateway")
    key = capsys.readouterr().out.strip()
    assert key.startswith("lens_") and "\n" not in key
    assert services.api_key_authenticate(plain=key).scopes == ["ingest", "read"]

    call_command("create_user", org="initech", username="ann", password="s3cret-pass", role="admin")
    from django.contrib.auth import authenticate

    assert authenticate(username="ann", password="s3cret-pass").membership.role == "admin"

    call_command("lens_demo", org="initech", events=400)
    events = AuditEvent.objects.filter(org__slug="initech")
    assert events.count() == 400
    assert set(events.values_list("decision", flat=True)) == {"allow", "deny", "alert"}
    assert {"initialize", "tools/list", "tools/call"} <= set(events.values_list("method", flat=True))
    assert {"rate_limited", "upstream_error", "denied", "success"} <= set(events.values_list("outcome", flat=True))
    assert events.filter(decision="deny", rule__isnull=False).exists()
    assert events.filter(decision="deny", rule__isnull=True, reason__startswith="no rule matched").exists()
    assert events.values("slug").distinct().count() >= 4 and events.values("actor").distinct().count() >= 5
    multi = TraceSummary.objects.filter(org__slug="initech", calls__gt=1)
    assert multi.exists() and max(len(t.slugs) for t in multi) >= 2
    assert max(t.calls for t in TraceSummary.objects.filter(org__slug="initech")) <= 8


def test_create_api_key_rejects_unknown_scopes(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="scopes must be among"):
        call_command("create_api_key", org="initech", scopes="ingest,owner")


def test_create_api_key_makes_an_admin_key(db, capsys):
    call_command("create_api_key", org="initech", scopes="admin")
    assert services.api_key_authenticate(plain=capsys.readouterr().out.strip()).scopes == ["admin"]


def test_a_batch_that_cannot_be_stored_stays_pending_and_the_sweep_stores_it(org, monkeypatch, capsys):
    """Outside the in-process mode, a non-transient failure must not drop the acknowledged batch."""
    batch = PendingBatch.objects.create(org=org, events=clean_batch(5, trace_id="kept"), received_at=RECEIVED)
    real_ingest = store.events_ingest

    def broken_ingest(**kwargs):
        raise ValueError("bug")

    monkeypatch.setitem(ingest_events.app.conf, "task_always_eager", False)
    monkeypatch.setattr(outbox, "events_ingest", broken_ingest)
    ingest_events.run(batch_id=batch.pk)
    assert AuditEvent.objects.filter(org=org).count() == 0
    batch.refresh_from_db()
    assert (batch.attempts, batch.last_error) == (1, "ValueError('bug')")
    call_command("ingest_pending")
    assert "5 events" in capsys.readouterr().out

    monkeypatch.setattr(outbox, "events_ingest", real_ingest)
    call_command("ingest_pending", store=True)
    assert "stored 5" in capsys.readouterr().out
    assert AuditEvent.objects.filter(org=org).count() == 5
    assert not PendingBatch.objects.exists()


def test_a_message_the_broker_loses_after_the_202_is_stored_by_the_sweep(org, ingest_key, api_client, monkeypatch):
    """Redis can crash after BRPOP handed a message out and before kombu recorded it as
    unacknowledged; the acknowledged batch must survive in PostgreSQL."""
    monkeypatch.setitem(ingest_events.app.conf, "task_always_eager", False)
    monkeypatch.setattr(ingest_events, "apply_async", lambda *args, **kwargs: None)  # queued, then lost
    response = api_client.post(
        "/api/v1/audit-events", data=json.dumps([wire_event(trace_id="lost") for _ in range(7)]),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {ingest_key}",
    )
    assert response.status_code == 202
    assert AuditEvent.objects.filter(org=org).count() == 0
    assert outbox.pending_batches_sweep(older_than=timedelta(0)).stored == 7
    assert AuditEvent.objects.filter(org=org).count() == 7
    assert outbox.pending_batches_sweep(older_than=timedelta(0)).stored == 0


def test_a_batch_that_could_not_be_queued_is_not_kept(org, ingest_key, api_client, monkeypatch):
    """503 means not acknowledged: the sender resends, so the batch must not also be stored later."""
    def broker_down(*args, **kwargs):
        raise ConnectionError("Connection refused")

    monkeypatch.setitem(ingest_events.app.conf, "task_always_eager", False)
    monkeypatch.setattr(ingest_events, "apply_async", broker_down)
    response = api_client.post(
        "/api/v1/audit-events", data=json.dumps(wire_event()), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {ingest_key}",
    )
    assert response.status_code == 503
    assert not PendingBatch.objects.exists()


def test_a_lock_wait_past_the_soft_time_limit_is_retried_not_dropped():
    from celery.exceptions import SoftTimeLimitExceeded

    assert SoftTimeLimitExceeded in ingest_events.autoretry_for
    assert ingest_events.acks_late and not ingest_events.acks_on_failure_or_timeout


_HEARD = []


def _listener(stored):
    _HEARD.append(stored)


def _broken_listener(stored):
    raise RuntimeError("a listener's bug must not undo or fail the stored batch")


def test_listeners_hear_of_each_committed_batch_once(org, settings, django_capture_on_commit_callbacks):
    from audit.ingest.store import StoredRange

    settings.LENS_AFTER_STORE = ["tests.ingest.test_events_ingest._broken_listener", "tests.ingest.test_events_ingest._listener"]
    _HEARD.clear()
    with django_capture_on_commit_callbacks(execute=True):
        store.events_ingest(org_id=org.pk, events=clean_batch(3), received_at=RECEIVED)
    with django_capture_on_commit_callbacks(execute=True):
        store.events_ingest(org_id=org.pk, events=clean_batch(2), received_at=RECEIVED)
    assert _HEARD == [StoredRange(org_id=org.pk, first_seq=1, last_seq=3), StoredRange(org_id=org.pk, first_seq=4, last_seq=5)]
    assert AuditEvent.objects.filter(org=org).count() == 5


def test_the_door_s_content_hashes_travel_with_the_batch_and_are_what_is_stored(org, monkeypatch):
    from audit.ingest import receive
    from audit.integrity import chain

    monkeypatch.setattr(receive, "_hand_on", lambda *, batch: None)  # leave the batch in the outbox
    events = [wire_event(id=f"h-{n}") for n in range(3)]
    receive.events_receive(org=org, body=json.dumps(events).encode(), content_type="application/json")
    batch = PendingBatch.objects.get(org=org)
    assert batch.content_hashes == [chain.content_hash(event) for event in batch.events]

    hashed = []
    real = chain.content_hash
    monkeypatch.setattr(chain, "content_hash", lambda event: hashed.append(event) or real(event))
    outbox.pending_batch_ingest(batch_id=batch.pk)
    assert hashed == []  # the worker did not hash them again
    stored = dict(AuditEvent.objects.filter(org=org).values_list("event_id", "content_hash"))
    assert stored == {event["id"]: real(event) for event in batch.events}


def test_a_batch_without_hashes_is_hashed_by_the_worker(org):
    from audit.integrity import chain

    events = clean_batch(2)
    batch = PendingBatch.objects.create(org=org, events=events, received_at=RECEIVED)  # written before they were kept
    outbox.pending_batch_ingest(batch_id=batch.pk)
    stored = dict(AuditEvent.objects.filter(org=org).values_list("event_id", "content_hash"))
    assert stored == {event["id"]: chain.content_hash(event) for event in events}
