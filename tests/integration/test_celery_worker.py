"""Events go through the API, Redis and a real Celery worker process into PostgreSQL."""

import json
import time

import pytest

from audit.accounts import services
from audit.models import AuditEvent, Organization, TraceSummary
from tests.factories import wire_event

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def wait_for(predicate, *, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_worker_writes_acknowledged_events_once(celery_worker_process, api_client):
    org = Organization.objects.create(slug="acme", name="Acme")
    _, key = services.api_key_create(org=org, scopes=["ingest"])
    batches = [[wire_event(trace_id=f"trace-{b}") for _ in range(100)] for b in range(5)]

    def send(batch):
        return api_client.post(
            "/api/v1/audit-events", data=json.dumps(batch), content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )

    assert [send(batch).status_code for batch in batches] == [202] * 5
    # A resend of a batch still queued (or just stored) is acknowledged as duplicates, from
    # its claims or the stored events: nothing more is queued.
    resent = send(batches[0])
    assert resent.status_code == 202 and {r["status"] for r in resent.json()["receipts"]} == {"duplicate"}

    assert wait_for(lambda: AuditEvent.objects.filter(org=org).count() >= 500), "worker did not store the events"
    time.sleep(1)  # nothing more arrives: the resend queued no batch
    assert AuditEvent.objects.filter(org=org).count() == 500
    assert sorted(TraceSummary.objects.filter(org=org).values_list("calls", flat=True)) == [100] * 5
    # The writes really happened in the worker process, not in-process.
    assert celery_worker_process.log_path.read_text().count("Task audit.ingest_events[") >= 10  # 5 received, 5 done
    org.refresh_from_db()
    assert org.chain_seq == 500
    assert sorted(AuditEvent.objects.filter(org=org).values_list("seq", flat=True)) == list(range(1, 501))
