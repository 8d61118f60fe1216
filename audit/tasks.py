import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from audit import services

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
def ingest_events(*, org_id: int, events: list[dict], received_at: str) -> None:
    try:
        services.events_ingest(org_id=org_id, events=events, received_at=received_at)
    except _TRANSIENT:
        raise
    except Exception as exc:
        if ingest_events.app.conf.task_always_eager:
            raise  # in-process the request is still open: it answers, nothing was acknowledged
        # Anything else would fail again on every retry: keep the batch whole instead.
        logger.exception("storing %d events for org %s failed; kept as an ingest failure", len(events), org_id)
        services.ingest_failure_record(org_id=org_id, events=events, received_at=received_at, error=repr(exc))


@shared_task(
    name="audit.verify_chains",
    ignore_result=True,
    # A run only reads events and records its verdict, so overlapping or repeated runs
    # are harmless; the limits bound one run over a very long chain (~15k events/s).
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 60,
)
def verify_chains() -> None:
    """Periodic (Celery beat, CELERY_BEAT_SCHEDULE): verify every organization's chain."""
    from audit import integrity  # imported here: this task is appended below the ingest task's imports

    integrity.chain_verification_run_all(trigger="schedule")
