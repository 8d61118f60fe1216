"""Reads of the ingest room: the conflicts an organization's senders caused."""

from django.db.models import QuerySet

from audit.ingest.models import IngestConflict


def conflict_list(*, org_id: int) -> QuerySet:
    """Conflicts kept out of the organization's trail, for keyset pages on (detected_at, id)."""
    return IngestConflict.objects.filter(org_id=org_id)
