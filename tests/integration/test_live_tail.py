"""The live tail under the production server (gunicorn + uvicorn workers, lens.asgi): an event
another client posts appears on an open stream, and a resume with Last-Event-ID gets what
was stored meanwhile, no gap, no repeat. Embedded (SQLite, in-process, polling) and
PostgreSQL + Redis + a Celery worker (told by Redis pub/sub)."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from audit.accounts import services
from tests.factories import wire_event

ROOT = Path(__file__).resolve().parents[2]
STREAM, INGEST = "/api/v1/audit-events/stream", "/api/v1/audit-events"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def asgi_server(env, log_path):
    port = _free_port()
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "lens.asgi", "-k", "uvicorn_worker.UvicornWorker", "-w", "1",
             "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert server.poll() is None and time.monotonic() < deadline, Path(log_path).read_text()
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)


class Tail:
    """An SSE client on a thread: frames as they arrive."""

    def __init__(self, url, key, last_event_id=None, params=None):
        self.frames, self.opened = [], threading.Event()
        headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.client = httpx.Client(timeout=httpx.Timeout(60, read=90))
        self.thread = threading.Thread(target=self._read, args=(url + STREAM, headers, params), daemon=True)
        self.thread.start()
        assert self.opened.wait(60), "the stream did not open"

    def _read(self, url, headers, params):
        frame = {}
        with contextlib.suppress(httpx.HTTPError), self.client.stream("GET", url, headers=headers, params=params) as r:
            self.status = r.status_code
            self.opened.set()
            for line in r.iter_lines():
                if not line:
                    if frame:
                        self.frames.append(frame)
                    frame = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    frame[name] = value

    def events(self):
        return [json.loads(f["data"]) for f in list(self.frames) if f.get("event") == "audit-event"]

    def wait_for(self, count, seconds=60):
        deadline = time.monotonic() + seconds
        while len(self.events()) < count:
            assert time.monotonic() < deadline, f"only {self.events()} after {seconds}s"
            time.sleep(0.05)
        return self.events()

    def last_id(self):
        return [f["id"] for f in self.frames if "id" in f][-1]

    def close(self):
        self.client.close()


def _post(base, key, *events):
    response = httpx.post(base + INGEST, json=list(events), headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert response.status_code == 202, response.text


def _live_tail_round(base, read_key, ingest_key):
    tail = Tail(base, read_key, params={"decision": "deny"})
    assert tail.status == 200
    _post(base, ingest_key, wire_event(id="live-allow"), wire_event(id="live-deny", decision="deny", outcome="denied"))
    assert [e["id"] for e in tail.wait_for(1)] == ["live-deny"]
    token = tail.last_id()
    tail.close()
    # Stored while nobody listens, then a resume from the token: exactly the missed ones.
    _post(base, ingest_key, *[wire_event(id=f"gap-{n}", decision="deny", outcome="denied") for n in range(3)])
    resumed = Tail(base, read_key, last_event_id=token, params={"decision": "deny"})
    _post(base, ingest_key, wire_event(id="after", decision="deny", outcome="denied"))
    assert [e["id"] for e in resumed.wait_for(4)] == ["gap-0", "gap-1", "gap-2", "after"]
    time.sleep(0.5)
    assert len(resumed.events()) == 4  # and nothing twice
    resumed.close()


def test_live_tail_in_the_embedded_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "LENS_TEST"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'lens.sqlite3'}", DJANGO_SETTINGS_MODULE="lens.settings",
               LENS_STREAM_POLL_SECONDS="0.2")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True, timeout=120)

    def key(scopes):
        return subprocess.run([*manage, "create_api_key", "--org", "acme", "--scopes", scopes], cwd=ROOT, env=env,
                              check=True, timeout=60, capture_output=True, text=True).stdout.strip()

    read_key, ingest_key = key("read"), key("ingest")
    with asgi_server(env, tmp_path / "server.log") as base:
        _live_tail_round(base, read_key, ingest_key)


@pytest.mark.postgres
def test_live_tail_told_by_redis_with_a_worker(celery_worker_process, org, tmp_path):
    from tests.integration.conftest import REDIS_URL, _database_url

    read_key = services.api_key_create(org=org, scopes=["read"], name="tail")[1]
    ingest_key = services.api_key_create(org=org, scopes=["ingest"], name="post")[1]
    env = {**os.environ, "DATABASE_URL": _database_url(), "CELERY_BROKER_URL": REDIS_URL,
           "LENS_CELERY_QUEUE": celery_worker_process.queue, "DJANGO_SETTINGS_MODULE": "lens.settings",
           # Told, not polling: without the Redis notice nothing would arrive within the test's wait.
           "LENS_STREAM_KEEPALIVE_SECONDS": "600"}
    with asgi_server(env, tmp_path / "server.log") as base:
        _live_tail_round(base, read_key, ingest_key)
