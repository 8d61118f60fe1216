"""The traces API (SPEC §3): a trace list from the summaries, and one trace as a chain."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from audit.accounts.caller import request_caller
from audit.api import serializers as s
from audit.api.base import NOT_FOUND, PAGE_PARAMS, READ_ERRORS, ReadView, api_page
from audit.events.wire import event_wire
from audit.explore import selectors


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
    @extend_schema(
        operation_id="traces_retrieve",
        summary="One trace as a chain",
        description=(
            "The trace summary and its events in order (timestamp, then arrival), at most "
            f"{selectors.TRACE_CHAIN_LIMIT}. Percent-encode the trace id; it may contain any character but "
            "control characters, `/` included."
        ),
        responses={200: s.TraceChainSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request, trace_id):
        summary, events = selectors.trace_chain(org=request_caller(request).org, trace_id=trace_id)
        self.record(request, "trace-view", trace_id)
        return Response(
            {
                "trace": s.TraceSerializer(summary).data,
                "events": [event_wire(event) for event in events],
                "events_truncated": summary.calls > len(events),
            }
        )
