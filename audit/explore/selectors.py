"""Reads: events, traces and facet counts, always scoped to one organization.

`filters` is the request's query dict (or any mapping; repeated parameters as lists),
validated by the SPEC §3 FilterSet; invalid values raise `audit.explore.filters.FilterError`.
A missing or other organization's event or trace raises Http404, so a caller can
never tell "not yours" from "not there".
"""

from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from audit.accounts.models import Organization
from audit.events.models import AuditEvent
from audit.events.wire import WIRE_COLUMNS, event_wire, wire_json
from audit.explore import counts
from audit.explore.filters import EventFilterSet, TraceFilterSet, filterset_bind
from audit.explore.pagination import KeysetPage, chain_page
from audit.explore.vocabulary import FACETS, METADATA_PREFIX
from audit.ingest.models import TraceSummary

EVENT_ORDER = ("-timestamp", "-id")  # newest first; id breaks ties in arrival order
TRACE_ORDER = ("-started_at", "-id")
TRACE_PAGE_SIZE = 200  # calls of a trace per page (the browser's; the API's page_size defaults lower)


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


@dataclass(frozen=True)
class EventFacets:
    counts: dict[str, list[tuple]]  # facet -> [(value, count)], largest first


def event_facets(
    *, org: Organization, filters: Mapping | None = None, limit: int = 10, metadata_key: str | None = None,
) -> EventFacets:
    """Exact counts of the matching events by each facet of the vocabulary (and by the value
    of `metadata_key`, under `metadata.<key>`), largest first.

    The facets are counted together in one GROUP BY, over the count rollup when the
    filters allow (audit/explore/counts.py), else over the matching events; the metadata
    key always over the events.
    """
    counted = counts.event_breakdown(org=org, columns=tuple(term.field for term in FACETS), filters=filters)
    facets = {
        term.name: sorted(counted[term.field].items(), key=lambda item: (-item[1], item[0] is None, item[0] or ""))[:limit]
        for term in FACETS
    }
    if metadata_key:
        top = counts.event_top(org=org, by=METADATA_PREFIX + metadata_key, filters=filters, limit=limit)
        facets[METADATA_PREFIX + metadata_key] = [(row.value, row.count) for row in top.results]
    return EventFacets(counts=facets)


def trace_list(*, org: Organization, filters: Mapping | None = None) -> QuerySet:
    """Matching trace summaries, latest start first."""
    traces = TraceSummary.objects.filter(org=org)
    events = AuditEvent.objects.filter(org=org)
    return filterset_bind(TraceFilterSet, data=filters, queryset=traces, events=events).qs.order_by(*TRACE_ORDER)


def trace_chain(
    *, org: Organization, trace_id: str, size: int = TRACE_PAGE_SIZE, cursor: str | None = None,
    max_bytes: int | None = None,
) -> tuple[TraceSummary, KeysetPage]:
    """A trace's summary and a page of its events in order: timestamp, then arrival.

    At most `size` events (and, with `max_bytes`, about that many bytes of wire JSON)
    after `cursor`; `page.older` continues the chain, `summary.calls` counts it all.
    """
    summary = TraceSummary.objects.filter(org=org, trace_id=trace_id).first()
    if summary is None:
        raise Http404("No such trace.")
    page = chain_page(
        queryset=_events(org).filter(trace_id=trace_id), time_field="timestamp", size=size, org_id=org.pk,
        cursor=cursor, max_bytes=max_bytes, weigh=lambda event: len(wire_json(event_wire(event))),
    )
    return summary, page
