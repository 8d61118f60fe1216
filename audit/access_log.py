"""Reads of the audit trail are themselves audited: who read or exported what, with
which filters, when. One INSERT per read, from a one-line call in each view that
returns events; the organization's admins read the log at /api/v1/access-log."""

import ipaddress

from django.utils import timezone

from audit.filters import is_filter_param
from audit.models import AccessRecord, Membership


def _address(request):
    from rest_framework.throttling import BaseThrottle

    address = BaseThrottle().get_ident(request)  # REMOTE_ADDR, or X-Forwarded-For per NUM_PROXIES
    try:
        return str(ipaddress.ip_address(address.strip()))
    except (AttributeError, ValueError):
        return None  # not an address (a misconfigured proxy): record none rather than fail the read


def access_record(*, request, action: str, target: str = "", org=None) -> AccessRecord:
    """Record that `request` read events of its organization (an API key's or a login's;
    pass `org` when the caller has already looked it up)."""
    from audit.api.permissions import request_org

    user = request.user
    key = getattr(user, "key", None)
    if key is not None:
        actor = f"key:{key.prefix}" + (f" ({key.name})" if key.name else "")
    else:
        actor = user.get_username()
    query = request.GET
    return AccessRecord.objects.create(
        org=org or request_org(request),
        at=timezone.now(),
        actor=actor[:200],
        user=user if key is None else None,
        api_key=key,
        address=_address(request),
        action=action,
        path=request.path[:2000],
        target=target[:128],
        format=query.get("format", "")[:16],
        filters={name: query.getlist(name) for name in query if is_filter_param(name)},
    )


def access_record_list(*, org_id: int):
    """An organization's access records, for keyset pages on (at, id)."""
    return AccessRecord.objects.filter(org_id=org_id)


def is_org_admin(*, user) -> bool:
    """A logged-in person who is an admin of their organization (API keys never are)."""
    if getattr(user, "key", None) is not None or not getattr(user, "is_authenticated", False):
        return False
    membership = getattr(user, "membership", None)
    return membership is not None and membership.role == Membership.Role.ADMIN
