"""Reads of the retention room (the integrity page's retention panel)."""

from django.db.models import Count, IntegerField, JSONField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from audit.accounts.models import Organization
from audit.integrity.models import RemovedRange
from audit.ingest.models import RedactionPolicy
from audit.retention.models import LegalHold, RetentionPolicy
from audit.retention.services import duration_text


def _of_org(queryset, column, output_field=None):
    return Subquery(queryset.filter(org=OuterRef("pk")).values(column)[:1], output_field=output_field)


def retention_overview(*, org: Organization) -> dict:
    """The organization's retention, holds, redaction and last removal: one query."""
    holds = (
        LegalHold.objects.filter(org=OuterRef("pk"), released_at=None).order_by().values("org")
        .annotate(n=Count("*")).values("n")
    )
    removals = RemovedRange.objects.order_by("-removed_at", "-id")
    row = (
        Organization.objects.filter(pk=org.pk)
        .annotate(
            keep=_of_org(RetentionPolicy.objects, "keep_seconds"),
            keep_arguments=_of_org(RetentionPolicy.objects, "keep_arguments_seconds"),
            holds=Coalesce(Subquery(holds, output_field=IntegerField()), Value(0)),
            redacted=_of_org(RedactionPolicy.objects, "paths", JSONField()),
            removed_first=_of_org(removals, "first_seq"),
            removed_last=_of_org(removals, "last_seq"),
            removed_at=_of_org(removals, "removed_at"),
        )
        .values("keep", "keep_arguments", "holds", "redacted", "removed_first", "removed_last", "removed_at")
        .get()
    )
    return {
        "keep": duration_text(row["keep"]),
        "keep_arguments": duration_text(row["keep_arguments"]),
        "holds": row["holds"],
        "redacted": row["redacted"] or [],
        "last_removal": (
            {"first_seq": row["removed_first"], "last_seq": row["removed_last"], "removed_at": row["removed_at"]}
            if row["removed_first"] is not None else None
        ),
    }
