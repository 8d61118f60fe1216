"""Publishing checkpoints where the customer keeps them: a directory, and a real local HTTP server."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from audit.integrity import checkpoints, signatures
from audit.integrity.publication import checkpoints_publish_pending, published_file_name
from audit.models import Checkpoint
from tests.factories import store_events, wire_event


class _Receiver(BaseHTTPRequestHandler):
    """Records each POST; answers with the server's `status`, after its `delay`."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.server.delay)
        self.server.received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received, server.status, server.delay = [], 201, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def events(org):
    return store_events(org, wire_event(), wire_event())


def test_a_new_checkpoint_is_written_to_the_directory(org, events, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.LENS_CHECKPOINT_PUBLISH_DIR = str(tmp_path / "lens-{org}")
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = checkpoints.checkpoint_create(org=org, reason="schedule")
    wire = checkpoints.checkpoint_wire(checkpoint)
    (path,) = (tmp_path / "lens-acme").iterdir()
    assert path.name == published_file_name(wire) and path.name.startswith("acme-")
    assert json.loads(path.read_bytes()) == wire
    assert signatures.published_checkpoints_read(str(tmp_path / "lens-acme"), org="acme") == [wire]
    checkpoint.refresh_from_db()
    assert checkpoint.published_at is not None


def test_a_checkpoint_is_posted_to_the_customers_endpoint(org, events, settings, receiver):
    settings.LENS_CHECKPOINT_PUBLISH_URL = f"http://127.0.0.1:{receiver.server_port}/lens/{{org}}/checkpoints"
    checkpoint = checkpoints.checkpoint_create(org=org, reason="export")
    assert checkpoints_publish_pending() == 1
    ((path, headers, body),) = receiver.received
    assert path == "/lens/acme/checkpoints" and body == checkpoints.checkpoint_wire(checkpoint)
    assert headers["Content-Type"] == "application/json" and headers["Idempotency-Key"] == checkpoint.digest
    assert checkpoints_publish_pending() == 0  # published once


def test_a_refusing_endpoint_leaves_the_checkpoint_for_the_next_run(org, events, settings, receiver, caplog):
    settings.LENS_CHECKPOINT_PUBLISH_URL = f"http://127.0.0.1:{receiver.server_port}/"
    receiver.status = 503
    checkpoint = checkpoints.checkpoint_create(org=org, reason="schedule")
    assert checkpoints_publish_pending() == 0
    assert Checkpoint.objects.get(pk=checkpoint.pk).published_at is None and "answered 503" in caplog.text
    receiver.status = 200
    assert checkpoints_publish_pending() == 1 and len(receiver.received) == 2


def test_an_endpoint_that_does_not_answer_in_time_is_given_up_on(org, events, settings, receiver, caplog):
    settings.LENS_CHECKPOINT_PUBLISH_URL = f"http://127.0.0.1:{receiver.server_port}/"
    settings.LENS_CHECKPOINT_PUBLISH_TIMEOUT = 0.2
    receiver.delay = 1
    checkpoints.checkpoint_create(org=org, reason="schedule")
    assert checkpoints_publish_pending() == 0 and "ReadTimeout" in caplog.text


def test_an_unreachable_endpoint_and_an_unwritable_directory_are_logged_not_raised(org, events, settings, tmp_path, caplog):
    (tmp_path / "file").write_text("not a directory")
    settings.LENS_CHECKPOINT_PUBLISH_DIR = str(tmp_path / "file" / "sub")
    checkpoints.checkpoint_create(org=org, reason="schedule")
    assert checkpoints_publish_pending() == 0 and "not published" in caplog.text
    settings.LENS_CHECKPOINT_PUBLISH_DIR = ""
    settings.LENS_CHECKPOINT_PUBLISH_URL = "http://127.0.0.1:9/"  # discard port: nothing listens
    assert checkpoints_publish_pending() == 0 and "ConnectError" in caplog.text


def test_nothing_is_published_when_no_place_is_configured(org, events, tmp_path):
    checkpoints.checkpoint_create(org=org, reason="schedule")
    assert checkpoints_publish_pending() == 0
