"""Reads of the audit trail are themselves audited: who read or exported what, with
which filters, when. One INSERT per read, from a one-line call in each view that
returns events; the organization's admins read the log at /api/v1/access-log."""

from django.utils import timezone

from audit.accounts.caller import client_address, request_caller
from audit.accounts.models import AccessRecord


def access_record(*, request, action: str, target: str = "", filters: dict | None = None) -> AccessRecord:
    """Record that `request`'s caller read events of their organization.

    `filters` are the filter parameters of the read (name -> values); the caller's
    face passes them, as it is the one that knows which parameters are filters.
    """
    caller = request_caller(request)
    return AccessRecord.objects.create(
        org=caller.org,
        at=timezone.now(),
        actor=caller.name[:200],
        user=caller.user,
        api_key=caller.key,
        address=client_address(request),
        action=action,
        path=request.path[:2000],
        target=target[:128],
        format=request.GET.get("format", "")[:16],
        filters=filters or {},
    )


def access_record_list(*, org_id: int):
    """An organization's access records, for keyset pages on (at, id)."""
    return AccessRecord.objects.filter(org_id=org_id)
