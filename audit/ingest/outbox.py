"""The outbox of accepted batches (`PendingBatch`): stored by a worker, or by the sweep.

The request writes a batch here before it answers 202 and queues only its id; the
worker stores the events and deletes the row in one transaction. A batch whose
message was lost, or that failed for a reason a retry will not fix, stays here for
the periodic sweep.
"""

import logging
from datetime import timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from audit.ingest.models import PendingBatch
from audit.ingest.statistics import statistics_refresh
from audit.ingest.store import IngestResult, events_ingest

logger = logging.getLogger(__name__)


def pending_batch_ingest(*, batch_id: int) -> IngestResult | None:
    """Store a pending batch and delete it, in one transaction; None if already stored.

    The row lock makes a redelivered message and the sweep wait for each other, and
    the later one finds the batch gone.
    """
    with transaction.atomic():
        batch = PendingBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None:
            return None
        result = events_ingest(
            org_id=batch.org_id, events=batch.events, received_at=batch.received_at, content_hashes=batch.content_hashes
        )
        batch.delete()
    statistics_refresh()  # after the commit: a bulk load leaves no table unanalyzed for long
    return result


def pending_batch_failed(*, batch_id: int, error: str) -> None:
    """Keep the batch for the sweep, saying why it could not be stored."""
    PendingBatch.objects.filter(pk=batch_id).update(attempts=F("attempts") + 1, last_error=error[:10_000])


def pending_batches_sweep(*, older_than: timedelta) -> IngestResult:
    """Store the batches pending longer than `older_than` (their message was lost, or they failed)."""
    total = IngestResult()
    stale = PendingBatch.objects.filter(created_at__lt=timezone.now() - older_than).order_by("id")
    for batch_id in stale.values_list("pk", flat=True):
        try:
            result = pending_batch_ingest(batch_id=batch_id)
        except (OperationalError, InterfaceError):
            raise  # the database is away: the next sweep tries again
        except Exception as exc:
            logger.exception("pending batch %s still cannot be stored", batch_id)
            pending_batch_failed(batch_id=batch_id, error=repr(exc))
            continue
        if result is not None:
            total.add(result)
    return total


def pending_batch_list():
    return PendingBatch.objects.select_related("org").order_by("id")
