"""Reads: events, traces and facet counts, always scoped to one organization.

`filters` is the request's query dict (or any mapping; repeated parameters as lists),
validated by the SPEC §3 FilterSet; invalid values raise `audit.explore.filters.FilterError`.
A missing or other organization's event or trace raises Http404, so a caller can
never tell "not yours" from "not there".
"""

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.db.models import QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.http import Http404

from audit.accounts.models import Organization
from audit.events.models import AuditEvent
from audit.events.wire import WIRE_COLUMNS, event_wire, wire_json
from audit.explore.filters import EventFilterSet, TraceFilterSet, filterset_bind
from audit.explore.pagination import KeysetPage, chain_page
from audit.explore.suggestions import metadata_value_text
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
    window: int | None  # set when only the newest `window` matches were counted


def event_facets(
    *, org: Organization, filters: Mapping | None = None, limit: int = 10, window: int | None = None,
    metadata_key: str | None = None,
) -> EventFacets:
    """Counts of the matching events by each facet of the vocabulary (and by the value of
    `metadata_key`, under `metadata.<key>`), largest first.

    Counted over the newest `window` matches, read in one query along the list's own
    index: exact whenever fewer match, and bounded at millions of matches, where three
    exact GROUP BYs took ~1 s at 1M events (bench/REPORT.previous.md). The default
    window is the LENS_FACET_WINDOW setting.
    """
    window = window or settings.LENS_FACET_WINDOW
    events = filterset_bind(EventFilterSet, data=filters, queryset=AuditEvent.objects.filter(org=org)).qs
    names = [term.name for term in FACETS]
    columns = [term.field for term in FACETS]
    if metadata_key:
        names.append(METADATA_PREFIX + metadata_key)
        postgres = connections[events.db].vendor == "postgresql"
        # PostgreSQL reads just the key's text (->> writes numbers and booleans as the
        # filter does); SQLite's JSON paths cannot name every key, so it reads the object.
        columns.append(KeyTextTransform(metadata_key, "metadata") if postgres else "metadata")
    rows = list(events.order_by(*EVENT_ORDER).values_list(*columns)[: window + 1])
    windowed = len(rows) > window
    counters = {name: Counter() for name in names}
    for row in rows[:window]:
        if metadata_key and not postgres:
            value = (row[-1] or {}).get(metadata_key)
            row = (*row[:-1], None if value is None else metadata_value_text(value))
        for name, value in zip(names, row):
            counters[name][value] += 1
    return EventFacets(
        counts={
            facet: sorted(counter.items(), key=lambda item: (-item[1], item[0] is None, item[0] or ""))[:limit]
            for facet, counter in counters.items()
        },
        window=window if windowed else None,
    )


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
