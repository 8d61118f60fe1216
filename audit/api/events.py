"""The audit-events API (SPEC §2, §3): thin HTTP faces of the selectors and exports.

Every read needs a `read` key or a logged-in session (CanRead), is rate-limited per
key (ReadThrottle) and sees only the caller's organization: another organization's
event is a 404, the same answer as a missing one.
"""

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from audit.accounts.caller import request_caller
from audit.api import serializers as s
from audit.api.base import FORMAT_PARAM, NOT_FOUND, PAGE_PARAMS, READ_ERRORS, ReadView, api_page
from audit.api.ingest import EventIngestMixin
from audit.events.wire import event_wire
from audit.explore import exports, selectors
from audit.explore.vocabulary import ParameterError, filter_params
from audit.integrity import evidence
from audit.integrity.keys import SigningUnavailable

MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


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

    extra_params = (*PAGE_PARAMS, FORMAT_PARAM)
    takes_filters = True

    @extend_schema(
        operation_id="audit_events_list",
        summary="List events",
        description=(
            "Matching events, newest first (timestamp, then arrival), a page at a time. Pages follow a cursor on "
            "(timestamp, internal id), so walking `next` sees every older event exactly once even while new events "
            "arrive; pass `next_cursor` as `cursor` (or follow `next`) for the next page. The links are also in an "
            "RFC 8288 `Link` header. Unknown parameters are a 400.\n\n"
            "SPEC §3 also serves a page as CSV or NDJSON (`format=csv` or `format=ndjson`, the links in `Link`); "
            "those answers are left out of this operation so that a generated client has one body to parse. For CSV "
            "and NDJSON use `audit_events_export` (every match, streamed)."
        ),
        parameters=[
            *s.FILTER_PARAMETERS, *s.PAGE_PARAMETERS,
            OpenApiParameter(FORMAT_PARAM, OpenApiTypes.STR, enum=["json"], default="json",
                             description="`json` here; `csv` and `ndjson` pages too, outside this schema (see above)."),
        ],
        responses={200: s.EventPageSerializer, **READ_ERRORS},
    )
    def get(self, request, *args, **kwargs):
        fmt = self.output_format(request, ("json", "csv", "ndjson"), "json")
        events = selectors.event_list(org=request_caller(request).org, filters=request.query_params)
        page = api_page(events, request, time_field="timestamp")
        self.record(request, "event-list")
        headers = {"Link": page.link_header} if page.links else {}
        if fmt == "json":
            return Response(page.envelope([event_wire(event) for event in page.items]), headers=headers)
        return HttpResponse(b"".join(_lines(fmt, page.items)), content_type=MEDIA_TYPES[fmt], headers=headers)


class AuditEventCollectionView(EventIngestMixin, AuditEventListView):
    """/api/v1/audit-events: GET lists (SPEC §3), POST ingests (SPEC §2)."""


class AuditEventDetailView(ReadView):
    @extend_schema(
        operation_id="audit_events_retrieve",
        summary="One event",
        description="One event of your organization by the sender's id.",
        responses={200: s.EventSerializer, **READ_ERRORS, **NOT_FOUND},
    )
    def get(self, request, event_id):
        event = selectors.event_get(org=request_caller(request).org, event_id=event_id)
        self.record(request, "event-view", event_id)
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
            "empty cell. A text cell a spreadsheet would evaluate (`=`, `+`, `-`, `@`, their fullwidth and small "
            "forms or the minus sign, even after spaces and invisible characters; or a leading tab or line break) "
            "gets a leading `'` so spreadsheets show it; use NDJSON for exact values.\n\n"
            "On PostgreSQL the export reads one consistent snapshot."
        ),
        parameters=[
            *s.FILTER_PARAMETERS,
            _format_parameter(("ndjson", "csv"), "ndjson"),
            OpenApiParameter(
                evidence.MANIFEST_PARAM, OpenApiTypes.STR, enum=["1"],
                description="Evidence export (NDJSON only): each line adds `prev_chain_hash`; then a line "
                "`{\"manifest\": {...}}` holds the filters, row count, body SHA-256, line tags, the checkpoint signed "
                "for this export, exporter and time, and a last line `{\"signature\": {...}}` signs the manifest line "
                "with the organization's Ed25519 key. Check it offline with "
                "`python -m audit.verify FILE --public-key KEY` (docs/integrity.md). 503 when Lens cannot sign.",
            ),
        ],
        # Plain strings, not `format: binary`: generators then hand back the text whatever the media type.
        # A generated call reads the whole body; docs/api-clients.md shows how to stream it with the same client.
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="NDJSON, streamed."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV (format=csv), streamed."),
            **READ_ERRORS,
            503: OpenApiResponse(s.DetailSerializer, description=(
                "manifest=1, and Lens cannot sign (no signing secret); or this server process is streaming as many "
                "exports as it may at once (`LENS_EXPORTS_PER_PROCESS`): retry after `Retry-After` seconds."
            )),
        },
    )
    def get(self, request, *args, **kwargs):
        fmt = self.output_format(request, ("ndjson", "csv"), "ndjson")
        caller = request_caller(request)
        events = selectors.event_list(org=caller.org, filters=request.query_params)
        if evidence.MANIFEST_PARAM in request.query_params:  # an evidence-grade export
            if request.query_params[evidence.MANIFEST_PARAM] != "1" or fmt != "ndjson":
                raise ParameterError.one(evidence.MANIFEST_PARAM, "must be 1, with format=ndjson")
            try:
                chunks = exports.buffered(evidence.evidence_ndjson_lines(
                    org=caller.org, events=events, filters=filter_params(request.query_params), exported_by=caller.name
                ))
            except SigningUnavailable as exc:
                return Response({"detail": f"evidence exports cannot be signed right now: {exc}"}, status=503)
        else:
            chunks = exports.export_stream(fmt, events, filters=filter_params(request.query_params))
        try:
            chunks = exports.SlotHeld(chunks)
        except exports.ExportsBusy:
            return Response(
                {"detail": "this server is streaming as many exports as it may at once; retry shortly"},
                status=503, headers={"Retry-After": str(settings.LENS_RETRY_AFTER_SECONDS)},
            )
        self.record(request, "export")  # once nothing can refuse it any more
        response = StreamingHttpResponse(_streaming_content(chunks, request), content_type=MEDIA_TYPES[fmt])
        filename = f"audit-events-{timezone.now():%Y%m%dT%H%M%SZ}.{fmt}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
