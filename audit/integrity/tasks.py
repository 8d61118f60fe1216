"""Celery tasks of the integrity room."""

from celery import shared_task

from audit.integrity import verification


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
    verification.chain_verification_run_all(trigger="schedule")
