"""Reads: events, traces and facet counts, always scoped to one organization.

`filters` is the request's query dict (or any mapping; repeated parameters as lists),
validated by the SPEC §3 FilterSet; invalid values raise `audit.filters.FilterError`.
A missing or other organization's event or trace raises Http404, so a caller can
never tell "not yours" from "not there".
"""

from collections.abc import Mapping

from django.db.models import Count, QuerySet
from django.http import Http404

from audit.filters import EventFilterSet, TraceFilterSet, filterset_bind
from audit.models import AuditEvent, Organization, TraceSummary
from audit.wire import WIRE_COLUMNS

EVENT_ORDER = ("-timestamp", "-id")  # newest first; id breaks ties in arrival order
TRACE_ORDER = ("-started_at", "-id")
TRACE_CHAIN_LIMIT = 10_000
FACETS = ("decision", "slug", "actor")


def _events(org: Organization) -> QuerySet:
    return AuditEvent.objects.filter(org=org).only(*WIRE_COLUMNS)


def event_list(*, org: Organization, filters: Mapping | None = None) -> QuerySet:
    """Matching events, newest first (timestamp, then arrival)."""
    return filterset_bind(EventFilterSet, data=filters, queryset=_events(org)).qs.order_by(*EVENT_ORDER)


def event_get(*, org: Organization, event_id: str) -> AuditEvent:
    event = _events(org).filter(event_id=event_id).first()
    if event is None:
        raise Http404("No such event.")
    return event


def event_facets(*, org: Organization, filters: Mapping | None = None, limit: int = 10) -> dict[str, list[tuple]]:
    """Counts of the matching events by decision, slug and actor, largest first.

    One GROUP BY per facet over the filtered events; `limit` values per facet.
    """
    events = filterset_bind(EventFilterSet, data=filters, queryset=AuditEvent.objects.filter(org=org)).qs
    return {
        facet: list(
            events.order_by()
            .values_list(facet)
            .annotate(count=Count("id"))
            .order_by("-count", facet)
            .values_list(facet, "count")[:limit]
        )
        for facet in FACETS
    }


def trace_list(*, org: Organization, filters: Mapping | None = None) -> QuerySet:
    """Matching trace summaries, latest start first."""
    traces = TraceSummary.objects.filter(org=org)
    events = AuditEvent.objects.filter(org=org)
    return filterset_bind(TraceFilterSet, data=filters, queryset=traces, events=events).qs.order_by(*TRACE_ORDER)


def trace_chain(
    *, org: Organization, trace_id: str, limit: int = TRACE_CHAIN_LIMIT
) -> tuple[TraceSummary, list[AuditEvent]]:
    """A trace's summary and its events in order: timestamp, then arrival.

    At most `limit` events; `summary.calls` says how many there are in all.
    """
    summary = TraceSummary.objects.filter(org=org, trace_id=trace_id).first()
    if summary is None:
        raise Http404("No such trace.")
    events = list(_events(org).filter(trace_id=trace_id).order_by("timestamp", "id")[:limit])
    return summary, events
