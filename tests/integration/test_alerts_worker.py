"""Alerts through real Celery workers on real Redis: the ingest worker's after-store hook
matches and delivers; a worker killed in the middle of a POST is replaced and the
delivery is made again, with the same webhook-id."""

import json
import os
import signal
import threading

import pytest

from audit.accounts import services as accounts
from audit.alerts import services
from audit.alerts.models import Delivery
from audit.models import Organization
from tests.alerts.test_delivery import standard_webhooks_valid
from tests.factories import store_events, wire_event
from tests.integration.conftest import celery_worker_started
from tests.integration.test_celery_worker import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

SECRET = "whsec_" + "b" * 40
WORKER_ENV = {"LENS_DESTINATION_ALLOWED_HOSTS": "127.0.0.1", "LENS_DELIVERY_LEASE": "3",
              "LENS_ALERTS_CATCH_UP_EVERY": "1"}


def test_events_posted_to_the_api_are_delivered_by_the_worker(transactional_db, tmp_path, api_client, receiver):
    org = Organization.objects.create(slug="acme", name="Acme")
    _, key = accounts.api_key_create(org=org, scopes=["ingest"])
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url, secret=SECRET)
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=destination)
    events = [wire_event(id=f"evt-{n}", tool="delete_repo" if n % 10 == 0 else "list_issues") for n in range(50)]
    with celery_worker_started(tmp_path, env=WORKER_ENV) as worker:
        response = api_client.post("/api/v1/audit-events", data=json.dumps(events), content_type="application/json",
                                   HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 202
        assert wait_for(lambda: len(receiver.requests) >= 5), worker.log_path.read_text()[-3000:]
    assert sorted(json.loads(r.body)["event"]["id"] for r in receiver.requests) == [f"evt-{n}" for n in range(0, 50, 10)]
    assert all(standard_webhooks_valid(SECRET, r.headers, r.body) for r in receiver.requests)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    log = worker.log_path.read_text()
    assert "Task audit.alerts_match[" in log and "Task audit.alerts_deliver[" in log


def test_a_worker_killed_mid_delivery_is_replaced_and_the_same_message_is_sent_again(
    transactional_db, tmp_path, receiver
):
    org = Organization.objects.create(slug="acme", name="Acme")
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url, secret=SECRET)
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=destination)
    receiver.hang = threading.Event()  # the first POST never gets its answer
    with celery_worker_started(tmp_path, env=WORKER_ENV) as first:
        store_events(org, wire_event(id="evt-1", tool="delete_repo"))  # commits: the hook queues the match
        assert receiver.arrived.wait(60), first.log_path.read_text()[-3000:]
        os.killpg(first.pid, signal.SIGKILL)  # mid-POST: the worker never learns the answer
        first.wait()
        hung, receiver.hang = receiver.hang, None
        hung.set()
        assert Delivery.objects.get().status == "pending"  # nothing recorded: it died first

        beat = ["-B", "--schedule", str(tmp_path / "beat-schedule")]
        with celery_worker_started(tmp_path, queue=first.queue, env=WORKER_ENV, args=beat) as second:
            # The dead worker's lease runs out; beat's catch-up starts a new sender.
            assert wait_for(lambda: Delivery.objects.get().status == "delivered"), second.log_path.read_text()[-3000:]
    first_post, second_post = receiver.requests
    assert first_post.headers["webhook-id"] == second_post.headers["webhook-id"] == Delivery.objects.get().message_id
    assert first_post.body == second_post.body
    assert standard_webhooks_valid(SECRET, second_post.headers, second_post.body)
    assert Delivery.objects.get().attempts == 1  # the killed attempt left no record; the receiver saw two
