"""Celery tasks of the ingest path: thin, named, idempotent (so acks_late is safe)."""

import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from audit.ingest import outbox

logger = logging.getLogger(__name__)
# Outages and slowness pass; a retry stores the batch once they do.
_TRANSIENT = (OperationalError, InterfaceError, SoftTimeLimitExceeded)


@shared_task(
    name="audit.ingest_events",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # The events were acknowledged, so giving up would lose them: outages and lock
    # waits past the soft limit are retried with backoff until they pass; a hard
    # timeout leaves the message unacknowledged, so Redis redelivers it. The write is
    # one transaction and idempotent, so a retry or redelivery stores each event once.
    autoretry_for=_TRANSIENT,
    acks_on_failure_or_timeout=False,
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=None,
    soft_time_limit=120,
    time_limit=180,
)
def ingest_events(*, batch_id: int) -> None:
    try:
        outbox.pending_batch_ingest(batch_id=batch_id)
    except _TRANSIENT:
        raise
    except Exception as exc:
        # Anything else would fail again on every retry: the batch stays pending, with
        # the reason, for the sweep (and a person) to deal with.
        logger.exception("storing pending batch %s failed; it stays pending", batch_id)
        outbox.pending_batch_failed(batch_id=batch_id, error=repr(exc))


def in_process() -> bool:
    """No broker (the embedded default): what a worker would do happens in the request."""
    return bool(ingest_events.app.conf.task_always_eager)


@shared_task(name="audit.sweep_pending_batches", ignore_result=True, soft_time_limit=600, time_limit=660)
def sweep_pending_batches() -> None:
    """Periodic (CELERY_BEAT_SCHEDULE): store batches whose queue message was lost."""
    outbox.pending_batches_sweep(older_than=timedelta(seconds=settings.LENS_SWEEP_AFTER_SECONDS))
