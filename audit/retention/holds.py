"""Legal holds (SPEC §11): events matching an active hold's query are never removed."""

from functools import reduce
from operator import or_

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from audit.accounts.models import Organization
from audit.explore.query import QuerySyntaxError, query_condition, query_parse
from audit.retention.models import LegalHold

MAX_QUERY = 2000


class HoldError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.errors = {field: [message]}


def hold_place(*, org: Organization, reason: str, query: str, by: str) -> LegalHold:
    reason, query = (reason or "").strip(), (query or "").strip()
    if not reason:
        raise HoldError("reason", "say why the events are held")
    if not query:
        raise HoldError("query", "give a §7 query for the events to hold (e.g. actor:alice@company.com)")
    if len(query) > MAX_QUERY:
        raise HoldError("query", f"must be at most {MAX_QUERY} characters")
    try:
        query_parse(query)
    except QuerySyntaxError as exc:
        raise HoldError("query", str(exc)) from None
    return LegalHold.objects.create(org=org, reason=reason[:500], query=query, created_by=by[:200])


def hold_release(*, hold: LegalHold, by: str) -> LegalHold:
    hold.released_at, hold.released_by = timezone.now(), by[:200]
    hold.save(update_fields=["released_at", "released_by"])
    return hold


def holds_active(*, org: Organization):
    return LegalHold.objects.filter(org=org, released_at=None).order_by("-created_at", "-id")


def hold_get(*, org: Organization, hold_id: int) -> LegalHold | None:
    """An active hold of the organization (another organization's, or a released one: None)."""
    return holds_active(org=org).filter(pk=hold_id).first()


def held_condition(*, org: Organization) -> Q | None:
    """The events some active hold covers, as one condition; None when nothing is held.

    A relative time in a hold's query (`since:30d`) is read at each retention run: holds
    meant to last should name absolute times."""
    conditions = [query_condition(query_parse(hold.query), vendor=connection.vendor) for hold in holds_active(org=org)]
    if not conditions:
        return None
    # A query of no terms compiles to Q(), which `|` would drop: it holds every event.
    if any(not condition for condition in conditions):
        return Q(pk__isnull=False)
    return reduce(or_, conditions)
