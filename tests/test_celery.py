"""lens/celery.py: a worker keeps its database connection across tasks, and drops it after an error."""

import psycopg
import pytest
from celery import signals
from django.db import OperationalError, connection

from audit.ingest.tasks import ingest_events

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def worker_fixup():
    """Celery's Django fixup, installed as a worker installs it (its handlers run around every task)."""
    from celery.fixups.django import DjangoWorkerFixup

    from lens.celery import app

    fixup = DjangoWorkerFixup(app).install()
    yield fixup
    for signal, handler in ((signals.task_prerun, fixup.on_task_prerun), (signals.task_postrun, fixup.on_task_postrun),
                            (signals.worker_process_init, fixup.on_worker_process_init),
                            (signals.beat_embedded_init, fixup.close_database)):
        signal.disconnect(handler)


def _backend_pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _task_runs(body):
    """What the worker does around a task: the signals before and after it."""
    signals.task_prerun.send(sender=ingest_events, task_id="t", task=ingest_events, args=(), kwargs={})
    try:
        return body()
    finally:
        signals.task_postrun.send(sender=ingest_events, task_id="t", task=ingest_events, args=(), kwargs={})


def test_one_connection_serves_task_after_task():
    pids = {_task_runs(_backend_pid) for _ in range(5)}
    assert len(pids) == 1  # Celery's Django fixup alone would have opened a session per task


def test_a_connection_the_database_dropped_is_replaced_for_the_retry():
    pid = _task_runs(_backend_pid)
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
                         password=settings.get("PASSWORD") or None, dbname=settings["NAME"], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])

    def failing_task():
        with pytest.raises(OperationalError):
            _backend_pid()
        signals.task_retry.send(sender=ingest_events, request=None, reason="database away")

    _task_runs(failing_task)
    assert _task_runs(_backend_pid) != pid
