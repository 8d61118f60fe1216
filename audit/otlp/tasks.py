"""Celery tasks of the OTLP door: thin, named, idempotent."""

import logging

from celery import shared_task

from audit.ingest.receive import QueueUnavailable
from audit.otlp import flush

logger = logging.getLogger(__name__)


@shared_task(name="audit.otlp_flush", ignore_result=True, soft_time_limit=120, time_limit=180)
def otlp_flush() -> None:
    """Periodic (CELERY_BEAT_SCHEDULE): calls whose guardrail wait is over become events;
    spans kept past LENS_OTLP_KEEP_SECONDS are forgotten."""
    try:
        flush.otlp_calls_flush()
    except QueueUnavailable as exc:
        logger.warning("OTLP calls not handed on yet (the next flush tries again): %s", exc)
    flush.otlp_spans_purge()
