"""Reads of the retention room (the integrity page's retention panel)."""

from audit.accounts.models import Organization
from audit.integrity.models import RemovedRange
from audit.retention.holds import holds_active
from audit.retention.models import RetentionPolicy
from audit.retention.redaction import redaction_paths
from audit.retention.services import duration_text


def retention_overview(*, org: Organization) -> dict:
    policy = RetentionPolicy.objects.filter(org=org).first()
    last_removal = RemovedRange.objects.filter(org=org).order_by("-removed_at", "-id").first()
    return {
        "keep": duration_text(policy.keep_seconds) if policy else "forever",
        "keep_arguments": duration_text(policy.keep_arguments_seconds) if policy else "forever",
        "holds": holds_active(org=org).count(),
        "redacted": redaction_paths(org=org),
        "last_removal": last_removal,
    }
