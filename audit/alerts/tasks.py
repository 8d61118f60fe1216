"""Celery tasks of the alerts room: thin, named, idempotent (so acks_late is safe).

Matching and sending never run in a web request: the ingest worker's after-commit hook
(`events_stored`, in LENS_AFTER_STORE) queues matching, matching queues sending, and
the periodic catch-up (Celery beat) queues both for anything the hook missed. With no
broker (the embedded default) they run in-process, as ingest does.
"""

from celery import shared_task
from django.conf import settings

from audit.alerts import delivery, matching
from audit.alerts.models import AlertRule


def events_stored(stored) -> None:
    """LENS_AFTER_STORE listener: a batch of events was committed (audit.ingest.store.StoredRange)."""
    if AlertRule.objects.filter(org_id=stored.org_id, enabled=True).exists():
        alerts_match.delay(org_id=stored.org_id)


@shared_task(name="audit.alerts_match", ignore_result=True, acks_late=True, soft_time_limit=300, time_limit=360)
def alerts_match(*, org_id: int) -> None:
    for destination_id in sorted(matching.rules_match(org_id=org_id)):
        alerts_deliver.delay(destination_id=destination_id)


@shared_task(name="audit.alerts_deliver", ignore_result=True, acks_late=True, soft_time_limit=120, time_limit=150)
def alerts_deliver(*, destination_id: int) -> None:
    more = delivery.destination_deliver(destination_id=destination_id, budget_seconds=settings.LENS_DELIVERY_RUN_SECONDS)
    if more and not alerts_deliver.app.conf.task_always_eager:
        alerts_deliver.delay(destination_id=destination_id)


@shared_task(name="audit.alerts_catch_up", ignore_result=True, soft_time_limit=60, time_limit=90)
def alerts_catch_up() -> None:
    """Periodic: match what no hook announced; send what is due (retries, expired leases)."""
    for org_id in matching.orgs_behind():
        alerts_match.delay(org_id=org_id)
    for destination_id in delivery.destinations_due():
        alerts_deliver.delay(destination_id=destination_id)
