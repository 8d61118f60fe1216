"""The traces API (SPEC §3): a trace list from the summaries, and one trace as a chain."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from audit.accounts.caller import request_caller
from audit.api import serializers as s
from audit.api.base import NOT_FOUND, PAGE_PARAMS, READ_ERRORS, ReadView, api_page, page_url
from audit.events.wire import event_wire
from audit.explore import selectors
from audit.explore.pagination import CURSOR_PARAM, DEFAULT_PAGE_SIZE, PAGE_SIZE_PARAM, page_size


class TraceListView(ReadView):
    extra_params = PAGE_PARAMS
    takes_filters = True

    @extend_schema(
        operation_id="traces_list",
        summary="List traces",
        description=(
            "One row per trace, latest start first, from the trace summaries. `since`/`until` keep traces whose "
            "span overlaps the window; `trace_id` matches the trace; every other filter keeps traces containing "
            "at least one event that matches all of them (inside the window when one is given). Cursor-paginated "
            "on (started_at, internal id); a late event older than its trace's start moves the trace."
        ),
        parameters=[*s.FILTER_PARAMETERS, *s.PAGE_PARAMETERS],
        responses={200: s.TracePageSerializer, **READ_ERRORS},
    )
    def get(self, request, *args, **kwargs):
        traces = selectors.trace_list(org=request_caller(request).org, filters=request.query_params)
        page = api_page(traces, request, time_field="started_at")
        self.record(request, "trace-list")
        return Response(page.envelope(s.TraceSerializer(page.items, many=True).data))


class TraceDetailView(ReadView):
    extra_params = PAGE_PARAMS

    @extend_schema(
        operation_id="traces_retrieve",
        summary="One trace as a chain",
        description=(
            "The trace summary and its events in order (timestamp, then arrival), a page at a time: at most "
            f"`page_size` events (default {DEFAULT_PAGE_SIZE}) and about {settings.LENS_TRACE_PAGE_BYTES} bytes of "
            "events (`LENS_TRACE_PAGE_BYTES`; always at least one event), so a trace of large arguments is several "
            "bounded answers. `next` continues the chain; `events_truncated` is true while it does. Percent-encode "
            "the trace id; it may contain any character but control characters, `/` included."
        ),
        parameters=[*s.PAGE_PARAMETERS],
        responses={200: s.TraceChainSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request, trace_id):
        summary, page = selectors.trace_chain(
            org=request_caller(request).org, trace_id=trace_id, size=page_size(request.query_params.get(PAGE_SIZE_PARAM)),
            cursor=request.query_params.get(CURSOR_PARAM), max_bytes=settings.LENS_TRACE_PAGE_BYTES,
        )
        self.record(request, "trace-view", trace_id)
        following = page_url(request, page.older) if page.older else None
        return Response(
            {
                "trace": s.TraceSerializer(summary).data,
                "events": [event_wire(event) for event in page.rows],
                "events_truncated": following is not None,
                "next": following,
                "next_cursor": page.older.encode() if page.older else None,
            }
        )
