from celery import shared_task
from django.db import InterfaceError, OperationalError

from audit import services


@shared_task(
    name="audit.ingest_events",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # Database outages are retried with backoff until the database is back: the
    # events were acknowledged, so giving up would lose them. The write is one
    # transaction and idempotent, so a retry or a redelivery stores each event once.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=None,
    soft_time_limit=120,
    time_limit=180,
)
def ingest_events(*, org_id: int, events: list[dict], received_at: str) -> None:
    services.events_ingest(org_id=org_id, events=events, received_at=received_at)


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
