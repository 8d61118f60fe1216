"""Who is calling: the one place that decides a request's organization, identity and rights.

A request is made by a signed-in person (a member of one organization) or with an
API key (of one organization). Pages, the API, the access log and evidence
manifests all read it from here, so they name the caller the same way.
"""

import ipaddress
from dataclasses import dataclass

from django.conf import settings

from audit.accounts.models import ApiKey, Membership, Organization

READ, INGEST, ADMIN = ApiKey.Scope.READ, ApiKey.Scope.INGEST, ApiKey.Scope.ADMIN


@dataclass(frozen=True)
class Caller:
    org: Organization | None
    user: object = None  # the signed-in person, when not a key
    key: ApiKey | None = None
    role: str | None = None  # the person's role in the organization

    @property
    def name(self) -> str:
        """How records and manifests name the caller: `key:<prefix> (<name>)` or `user:<username>`."""
        if self.key is not None:
            return f"key:{self.key.prefix}" + (f" ({self.key.name})" if self.key.name else "")
        if self.user is not None:
            return f"user:{self.user.get_username()}"
        return "anonymous"

    @property
    def is_admin(self) -> bool:
        """An admin of the organization: a member signed in with the admin role, or a key
        with the `admin` scope (SPEC §12)."""
        if self.key is not None:
            return self.key.has_scope(ADMIN)
        return self.org is not None and self.role == Membership.Role.ADMIN

    def may(self, scope: str) -> bool:
        """A key may do what its scopes say; a member may read their organization."""
        if self.key is not None:
            return self.key.has_scope(scope)
        return self.org is not None and scope == READ


_ANONYMOUS = Caller(org=None)


def request_caller(request) -> Caller:
    """The caller of a Django or DRF request (read once per request)."""
    http = getattr(request, "_request", request)  # a DRF Request wraps Django's
    cached = getattr(http, "_lens_caller", None)
    if cached is not None:
        return cached
    auth = getattr(request, "auth", None)
    user = getattr(request, "user", None)
    if isinstance(auth, ApiKey):
        caller = Caller(org=auth.org, key=auth)
    elif user is not None and user.is_authenticated:
        membership = Membership.objects.select_related("org").filter(user_id=user.pk).first()
        caller = Caller(
            org=membership.org if membership else None, user=user, role=membership.role if membership else None
        )
    else:
        return _ANONYMOUS  # not cached: authentication may still happen later in the request
    http._lens_caller = caller
    return caller


def client_address(request) -> str | None:
    """The client's address: REMOTE_ADDR, or the X-Forwarded-For entry that the
    `LENS_NUM_PROXIES` proxies in front of Lens vouch for (0 trusts none, so a client
    cannot choose the address its throttles and access records see)."""
    http = getattr(request, "_request", request)
    address = http.META.get("REMOTE_ADDR")
    forwarded = http.META.get("HTTP_X_FORWARDED_FOR")
    proxies = settings.LENS_NUM_PROXIES
    if proxies and forwarded:
        hops = forwarded.split(",")
        address = hops[-min(proxies, len(hops))]
    try:
        return str(ipaddress.ip_address((address or "").strip()))
    except ValueError:
        return None  # not an address (a misconfigured proxy): none rather than a failure
