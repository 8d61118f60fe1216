"""Claims: of several senders racing with one new id and different content, exactly one is
accepted and every other is told `conflict`; claims live only while their batch is in flight."""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from audit.accounts import services
from audit.ingest import tasks
from audit.models import AuditEvent, IngestClaim, IngestConflict, PendingBatch
from tests.factories import wire_event

ROOT = Path(__file__).resolve().parents[2]
URL = "/api/v1/audit-events"
SENDERS = 20


@pytest.fixture
def post(api_client, ingest_key):
    def _post(events):
        return api_client.generic("POST", URL, data=json.dumps(events), content_type="application/json",
                                  HTTP_AUTHORIZATION=f"Bearer {ingest_key}")

    return _post


def _in_flight(org, event, digest):
    """A batch another request wrote and has not handed to a worker yet."""
    batch = PendingBatch.objects.create(org=org, events=[event], received_at="2026-11-23T09:00:00.000000Z")
    IngestClaim.objects.create(org=org, event_id=event["id"], content_hash=digest, batch=batch)
    return batch


def test_an_id_held_by_a_batch_in_flight_is_a_conflict_or_a_duplicate(post, org):
    from audit.integrity.chain import content_hash
    from audit.ingest.door import validate_event

    raw = wire_event(id="evt-1", reason="first")
    first, _ = validate_event(raw, max_bytes=1 << 20)
    _in_flight(org, first, content_hash(first))
    other = post([{**raw, "reason": "second"}]).json()["receipts"][0]
    same = post([raw]).json()["receipts"][0]
    assert other["status"] == "conflict" and "different content" in other["errors"]["id"]
    assert same["status"] == "duplicate"
    assert not AuditEvent.objects.filter(org=org).exists()  # neither jumped the queue
    assert IngestClaim.objects.filter(org=org).count() == 1  # still the first batch's


def test_claims_last_only_while_the_batch_is_in_flight(post, org):
    a = wire_event(id="a")
    assert post([a, wire_event(id="b")]).status_code == 202
    assert IngestClaim.objects.count() == 0 and PendingBatch.objects.count() == 0  # stored in-process
    assert post([a, wire_event(id="c")]).json()["receipts"][0]["status"] == "duplicate"
    assert IngestClaim.objects.count() == 0


def test_a_batch_that_cannot_be_queued_gives_its_claims_up(post, org, monkeypatch):
    def refuse(**kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks, "in_process", lambda: False)
    monkeypatch.setattr(tasks.ingest_events, "apply_async", refuse)
    assert post([wire_event(id="a")]).status_code == 503
    assert IngestClaim.objects.count() == 0 and PendingBatch.objects.count() == 0
    monkeypatch.undo()
    assert post([wire_event(id="a", reason="resent later, other content")]).json()["receipts"][0]["status"] == "accepted"


def test_every_conflict_told_in_a_receipt_is_recorded(post, org):
    post([wire_event(id="a", reason="one")])
    response = post([wire_event(id="a", reason="two"), wire_event(id="b", reason="x"), wire_event(id="b", reason="y")])
    assert [r["status"] for r in response.json()["receipts"]] == ["conflict", "accepted", "conflict"]
    recorded = sorted(IngestConflict.objects.filter(org=org).values_list("event_id", "payload__reason", "in_receipt"))
    assert recorded == [("a", "two", True), ("b", "y", True)]


def test_claim_receipts_cost_one_insert_per_request(post, org, django_assert_max_num_queries):
    post([wire_event(id="warm")])
    # In-process, the worker's writes included: SQLite's bulk INSERT cut at 999 parameters (6 statements
    # for 200 rows of 25 columns), the count rollup and its marginals (an upsert each per grain), and
    # the organization's redaction paths (read once).
    with django_assert_max_num_queries(30):
        assert post([wire_event(id=f"e{n}") for n in range(200)]).status_code == 202


# --- a real race, in the embedded default (SQLite, in-process tasks) and on PostgreSQL ------------


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _race(port, key):
    """SENDERS threads post the same new id with different content at once; their receipts."""
    start, statuses = threading.Barrier(SENDERS), []

    def send(n):
        body = json.dumps([wire_event(id="raced-1", trace_id="race", reason=f"sender {n}")])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait(timeout=30)
        conn.request("POST", URL, body=body, headers={"Authorization": f"Bearer {key}",
                                                      "Content-Type": "application/json"})
        response = conn.getresponse()
        statuses.append((response.status, json.loads(response.read())["receipts"][0]["status"]))
        conn.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return Counter(statuses)


def test_racing_senders_in_the_embedded_default_one_accepted_the_rest_told_conflict(tmp_path):
    """gunicorn with 8 threads on a SQLite file and no broker: Lens as `make run` serves it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "LENS_TEST"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'lens.sqlite3'}", DJANGO_SETTINGS_MODULE="lens.settings")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    key = subprocess.run([*manage, "create_api_key", "--org", "acme", "--scopes", "ingest"], cwd=ROOT, env=env,
                         check=True, timeout=60, capture_output=True, text=True).stdout.strip()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "lens.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1",
                               "--threads", "8"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        outcome = _race(port, key)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert outcome == Counter({(202, "accepted"): 1, (400, "conflict"): SENDERS - 1})


@pytest.mark.postgres
def test_racing_senders_on_postgresql_one_accepted_the_rest_told_conflict(live_server, org):
    _, key = services.api_key_create(org=org, scopes=["ingest"])
    outcome = _race(int(live_server.url.rsplit(":", 1)[1]), key)
    assert outcome == Counter({(202, "accepted"): 1, (400, "conflict"): SENDERS - 1})
    assert AuditEvent.objects.filter(org=org).count() == 1
    assert IngestConflict.objects.filter(org=org, in_receipt=True).count() == SENDERS - 1
    assert IngestConflict.objects.filter(org=org, in_receipt=False).count() == 0
    assert not IngestClaim.objects.exists()

