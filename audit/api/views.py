"""The audit-events API (SPEC §2, §3): thin HTTP faces of the selectors and exports.

Every read needs a `read` key or a logged-in session (CanRead), is rate-limited per
key (ReadThrottle) and sees only `request_org(request)`: another organization's event
or trace is a 404, the same answer as a missing one.
"""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import access_log, evidence, exports, selectors
from audit.api import serializers as s
from audit.api.ingest import EventIngestMixin
from audit.api.pagination import CURSOR_PARAM, PAGE_SIZE_PARAM, KeysetPagination, QueryParamError
from audit.api.permissions import CanRead, request_org
from audit.api.throttling import ReadThrottle
from audit.filters import FilterError, is_filter_param
from audit.wire import event_wire

FORMAT_PARAM = "format"
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
EVENT_PAGES = KeysetPagination(field="timestamp")
TRACE_PAGES = KeysetPagination(field="started_at")

_READ_ERRORS = {
    400: OpenApiResponse(s.ParameterErrorSerializer, description="A parameter is invalid; `errors` names it."),
    401: s.DetailSerializer,
    403: OpenApiResponse(s.DetailSerializer, description="The key lacks the `read` scope."),
    429: OpenApiResponse(s.DetailSerializer, description="Over the read rate limit; see Retry-After."),
}
_NOT_FOUND = {404: OpenApiResponse(s.DetailSerializer, description="No such id in your organization.")}


class JSONNegotiation(BaseContentNegotiation):
    """Always JSON for DRF's own answers; `format` is ours to read (and to reject with a 400)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ReadView(APIView):
    permission_classes = [CanRead]
    throttle_classes = [ReadThrottle]
    content_negotiation_class = JSONNegotiation
    extra_params: tuple = ()  # query parameters besides the filters
    takes_filters = False

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method == "GET":
            self.check_query_params(request)

    def check_query_params(self, request):
        """An unknown parameter (a typo of a filter) is an error, never silently ignored."""
        for name in request.query_params:
            if name not in self.extra_params and not (self.takes_filters and is_filter_param(name)):
                raise QueryParamError(name, "is not a parameter of this endpoint")

    def handle_exception(self, exc):
        if isinstance(exc, (FilterError, QueryParamError)):
            problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.errors.items())
            return Response({"detail": f"Invalid query: {problems}", "errors": exc.errors}, status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    def output_format(self, request, choices, default):
        value = request.query_params.get(FORMAT_PARAM) or default
        if value not in choices:
            raise QueryParamError(FORMAT_PARAM, f"must be one of {', '.join(choices)}")
        return value


def _lines(fmt, events):
    return exports.export_csv_lines(events) if fmt == "csv" else exports.export_ndjson_lines(events)


def _streaming_content(chunks, request):
    """Under ASGI, Django would buffer a sync iterator whole; step it in the request's thread instead."""
    if not isinstance(request._request, ASGIRequest):
        return chunks

    async def stream():
        step = sync_to_async(next, thread_sensitive=True)
        try:
            while (chunk := await step(chunks, None)) is not None:
                yield chunk
        finally:
            await sync_to_async(chunks.close, thread_sensitive=True)()

    return stream()


def _format_parameter(choices, default):
    return OpenApiParameter(FORMAT_PARAM, OpenApiTypes.STR, enum=list(choices), default=default)


class AuditEventListView(ReadView):
    """GET /api/v1/audit-events: newest first, keyset-paginated, as JSON, CSV or NDJSON."""

    extra_params = (CURSOR_PARAM, PAGE_SIZE_PARAM, FORMAT_PARAM)
    takes_filters = True

    @extend_schema(
        operation_id="audit_events_list",
        summary="List events",
        description=(
            "Matching events, newest first (timestamp, then arrival), a page at a time. Pages follow a cursor on "
            "(timestamp, internal id), so walking `next` sees every older event exactly once even while new events "
            "arrive. `format=csv` or `format=ndjson` returns the page in that format (see the export for the "
            "layout) with the `next`/`prev` links in an RFC 8288 `Link` header. Unknown parameters are a 400."
        ),
        parameters=[*s.FILTER_PARAMETERS, *s.PAGE_PARAMETERS, _format_parameter(("json", "csv", "ndjson"), "json")],
        responses={
            (200, "application/json"): s.EventPageSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            **_READ_ERRORS,
        },
    )
    def get(self, request, *args, **kwargs):
        fmt = self.output_format(request, ("json", "csv", "ndjson"), "json")
        events = selectors.event_list(org=request_org(request), filters=request.query_params)
        page = EVENT_PAGES.paginate(events, request)
        access_log.access_record(request=request, action="event-list")
        headers = {"Link": page.link_header} if page.links else {}
        if fmt == "json":
            results = [event_wire(event) for event in page.items]
            return Response({"next": page.next_url, "previous": page.previous_url, "results": results}, headers=headers)
        return HttpResponse(b"".join(_lines(fmt, page.items)), content_type=MEDIA_TYPES[fmt], headers=headers)


class AuditEventCollectionView(EventIngestMixin, AuditEventListView):
    """/api/v1/audit-events: GET lists (SPEC §3), POST ingests (SPEC §2)."""


class AuditEventDetailView(ReadView):
    @extend_schema(
        operation_id="audit_events_retrieve",
        summary="One event",
        description="One event of your organization by the sender's id.",
        responses={200: s.EventSerializer, **_READ_ERRORS, **_NOT_FOUND},
    )
    def get(self, request, event_id):
        event = selectors.event_get(org=request_org(request), event_id=event_id)
        access_log.access_record(request=request, action="event-view", target=event_id)
        return Response(event_wire(event))


class AuditEventExportView(ReadView):
    extra_params = (FORMAT_PARAM, evidence.MANIFEST_PARAM)
    takes_filters = True

    @extend_schema(
        operation_id="audit_events_export",
        summary="Export every matching event",
        description=(
            "Every matching event, newest first, streamed in constant memory whatever the count (no pages).\n\n"
            "* `ndjson` (default): one wire-format JSON object per line, values exactly as stored.\n"
            "* `csv`: a header row of the wire field names, then one row per event (RFC 4180, UTF-8). Nested "
            "fields (`arguments`, `rule`, `metadata`, `server`) are compact JSON text in their cell; null is an "
            "empty cell. Text cells beginning with `=`, `+`, `-`, `@`, tab or CR get a leading `'` so spreadsheets "
            "do not evaluate them; use NDJSON for exact values.\n\n"
            "On PostgreSQL the export reads one consistent snapshot."
        ),
        parameters=[
            *s.FILTER_PARAMETERS,
            _format_parameter(("ndjson", "csv"), "ndjson"),
            OpenApiParameter(
                evidence.MANIFEST_PARAM, OpenApiTypes.STR, enum=["1"],
                description="Evidence export (NDJSON only): each line adds `prev_chain_hash`, and a last line "
                "`{\"manifest\": {...}}` holds the filters, row count, body SHA-256, chain head, exporter and time. "
                "Check it offline with `python -m audit.verify FILE` (docs/integrity.md).",
            ),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (200, "text/csv"): OpenApiTypes.STR,
            **_READ_ERRORS,
        },
    )
    def get(self, request, *args, **kwargs):
        fmt = self.output_format(request, ("ndjson", "csv"), "ndjson")
        events = selectors.event_list(org=request_org(request), filters=request.query_params)
        access_log.access_record(request=request, action="export")
        lines = _lines(fmt, events)
        if evidence.MANIFEST_PARAM in request.query_params:  # issue 7: evidence-grade export
            if request.query_params[evidence.MANIFEST_PARAM] != "1" or fmt != "ndjson":
                raise QueryParamError(evidence.MANIFEST_PARAM, "must be 1, with format=ndjson")
            lines = evidence.evidence_ndjson_lines(
                org=request_org(request), events=events, filters=request.query_params,
                exported_by=evidence.exporter_name(request.user),
            )
        chunks = exports.buffered(lines)
        response = StreamingHttpResponse(_streaming_content(chunks, request), content_type=MEDIA_TYPES[fmt])
        filename = f"audit-events-{timezone.now():%Y%m%dT%H%M%SZ}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class TraceListView(ReadView):
    extra_params = (CURSOR_PARAM, PAGE_SIZE_PARAM)
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
        responses={200: s.TracePageSerializer, **_READ_ERRORS},
    )
    def get(self, request, *args, **kwargs):
        traces = selectors.trace_list(org=request_org(request), filters=request.query_params)
        page = TRACE_PAGES.paginate(traces, request)
        access_log.access_record(request=request, action="trace-list")
        results = [s.trace_summary_data(trace) for trace in page.items]
        return Response({"next": page.next_url, "previous": page.previous_url, "results": results})


class TraceDetailView(ReadView):
    @extend_schema(
        operation_id="traces_retrieve",
        summary="One trace as a chain",
        description=(
            "The trace summary and its events in order (timestamp, then arrival), at most "
            f"{selectors.TRACE_CHAIN_LIMIT}. Percent-encode the trace id; it may contain any character but "
            "control characters, `/` included."
        ),
        responses={200: s.TraceChainSerializer, **_READ_ERRORS, **_NOT_FOUND},
    )
    def get(self, request, trace_id):
        summary, events = selectors.trace_chain(org=request_org(request), trace_id=trace_id)
        access_log.access_record(request=request, action="trace-view", target=trace_id)
        return Response(
            {
                "trace": s.trace_summary_data(summary),
                "events": [event_wire(event) for event in events],
                "events_truncated": summary.calls > len(events),
            }
        )
