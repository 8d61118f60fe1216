"""Celery tasks of the integrity room: thin, named, safe to repeat."""

from celery import shared_task

from audit.accounts.models import Organization
from audit.integrity import publication, verification


@shared_task(
    name="audit.verify_chains",
    ignore_result=True,
    # A run signs a checkpoint only when the head moved, reads events and records its verdict,
    # so overlapping or repeated runs are harmless; the limits bound a full pass over a very
    # long chain (~15k events/s).
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 60,
)
def verify_chains() -> None:
    """Periodic (Celery beat, CELERY_BEAT_SCHEDULE): for every organization with events, sign its
    head into a checkpoint and verify its chain from the last verified checkpoint (or from seq 1
    when a full pass is due); then retry unpublished checkpoints."""
    verification.chain_verification_run_all(trigger="schedule")


@shared_task(name="audit.verify_chain_now", ignore_result=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 60)
def verify_chain_now(*, org_id: int) -> None:
    """An admin's "verify now" (the integrity page): one organization's cycle, a full pass."""
    org = Organization.objects.filter(pk=org_id).first()
    if org is not None:
        verification.chain_verification_cycle(org=org, trigger="manual", full=True)


@shared_task(name="audit.publish_checkpoints", ignore_result=True, soft_time_limit=120, time_limit=180)
def publish_checkpoints(*, checkpoint_id: int | None = None) -> None:
    """Publish a new checkpoint (or every unpublished one) where the customer keeps copies."""
    publication.checkpoints_publish_pending(checkpoint_id=checkpoint_id)
