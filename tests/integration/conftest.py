import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import kombu.pools
import pytest
from django.db import connection

from lens.celery import app as celery_app

REDIS_URL = os.environ.get("LENS_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
ROOT = Path(__file__).resolve().parents[2]


def _database_url():
    settings = connection.settings_dict
    return f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"


def _reset_broker_pools():
    # Connections are pooled per broker URL at first use; drop them when the URL changes.
    # kombu's own registry keeps producer pools per connection too: a closed one left there
    # would fail the next test on the same URL ("Acquire on closed pool").
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    kombu.pools.reset()


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real `celery -A lens worker` on real Redis, writing to this test's PostgreSQL database.

    Each test gets its own queue name, so leftovers of another run are never consumed.
    The test process is switched from in-process tasks to the same broker and queue.
    """
    with celery_worker_started(tmp_path) as worker:
        yield worker


@contextlib.contextmanager
def celery_worker_started(tmp_path, *, queue=None, env=None, args=()):
    """Start a worker (with `env` added to its environment and `args` to its command line);
    stop it on leaving. Several may run one after another on the same `queue`."""
    queue = queue or f"lens-test-{uuid.uuid4().hex[:8]}"
    environment = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "LENS_CELERY_QUEUE": queue,
        "DJANGO_SETTINGS_MODULE": "lens.settings",
        **(env or {}),
    }
    log_path = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
    log = log_path.open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "lens", "worker", "-Q", queue, "-c", "2", "-l", "info", "--without-heartbeat", "--without-gossip", "--without-mingle", *args],
        cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    worker.log_path = log_path
    worker.queue = queue
    saved = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager", "task_default_queue")}
    celery_app.conf.update(broker_url=REDIS_URL, task_always_eager=False, task_default_queue=queue)
    _reset_broker_pools()
    try:
        yield worker
    finally:
        celery_app.conf.update(**saved)
        _reset_broker_pools()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        log.close()
        connection.close()
