"""Celery tasks of the retention room: thin, named, safe to repeat."""

import logging

from celery import shared_task
from django.conf import settings

from audit.retention import partitions, services

logger = logging.getLogger(__name__)


@shared_task(name="audit.apply_retention", ignore_result=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 60)
def apply_retention() -> None:
    """Periodic (CELERY_BEAT_SCHEDULE, LENS_RETENTION_EVERY): make the coming days' partitions,
    then remove what every organization's retention says has expired. A run that finds nothing
    expired costs a few queries; a repeated run removes nothing twice."""
    made = partitions.partitions_maintain(ahead_days=settings.LENS_PARTITIONS_AHEAD_DAYS)
    if made:
        logger.info("made partitions %s", ", ".join(made))
    for plan in services.retention_apply():
        if plan.skipped:
            logger.error("retention: %s", plan.report(dry_run=False))
        elif plan.events or plan.arguments:
            logger.info("retention: %s", plan.report(dry_run=False))
