"""POST /api/v1/otlp/v1/traces: the OTLP/HTTP face of `audit.otlp` (SPEC §13).

Every answer is OTLP's own, in the request's encoding (protobuf or JSON): an
`ExportTraceServiceResponse` on 200, a `google.rpc.Status` on every failure — the key,
scope and rate-limit failures DRF raises included (`handle_exception`).
"""

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from audit.accounts.caller import request_caller
from audit.api.permissions import CanIngest
from audit.api.throttling import IngestThrottle
from audit.otlp import codec, services


def _failure(http_status, media, message):
    return HttpResponse(
        codec.status_encode(media=media, http_status=http_status, message=message), status=http_status, content_type=media
    )


class PartialSuccessSerializer(serializers.Serializer):
    rejectedSpans = serializers.CharField(help_text="How many spans were rejected (an int64: a string in JSON).")
    errorMessage = serializers.CharField(help_text="Why, span by span.")


class ExportResponseSerializer(serializers.Serializer):
    partialSuccess = PartialSuccessSerializer(required=False, help_text="Present when spans were rejected.")


class OtlpStatusSerializer(serializers.Serializer):
    code = serializers.IntegerField(required=False, help_text="The nearest gRPC code (informational).")
    message = serializers.CharField()


def _responses():
    """Each status in both encodings: JSON shapes for JSON requests, binary protobuf otherwise."""
    failures = {
        400: "The body cannot be read (not OTLP, bad gzip, too many spans).",
        401: "Missing or bad key.",
        403: "The key lacks the ingest scope.",
        413: "The body, or what it inflates to, is over the limit.",
        415: "Not application/x-protobuf or application/json, or an unknown Content-Encoding.",
        429: "Over the rate limit; retry after Retry-After.",
        503: "The database is unavailable; retry after Retry-After.",
    }
    responses = {
        (200, codec.JSON): OpenApiResponse(ExportResponseSerializer, description="Kept; partialSuccess says what not."),
        (200, codec.PROTOBUF): OpenApiResponse(OpenApiTypes.BINARY, description="ExportTraceServiceResponse."),
    }
    for status, text in failures.items():
        responses[(status, codec.JSON)] = OpenApiResponse(OtlpStatusSerializer, description=text)
        responses[(status, codec.PROTOBUF)] = OpenApiResponse(OpenApiTypes.BINARY, description=f"Status. {text}")
    return responses


OTLP_DESCRIPTION = f"""
OTLP/HTTP trace export (`application/x-protobuf`, or OTLP/JSON as `application/json`; a
`Content-Encoding` of gzip or deflate as exporters send it). Needs a key with the `ingest`
scope. Point an exporter at it with
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=https://<lens>/api/v1/otlp/v1/traces` and
`OTEL_EXPORTER_OTLP_TRACES_HEADERS=Authorization=Bearer%20<key>`.

Every span with `mcp.method.name` becomes one audit event (SPEC §13, docs/otlp.md), with its
decision from the span or its `apply_guardrail` child spans; the events take the ingest path
of `POST /api/v1/audit-events` (id `otel-<span id>`, so a resent span is stored once). Other
spans are counted in `partialSuccess.rejectedSpans`, each with the reason in `errorMessage`.
A 200 means every span not rejected is kept durably.

Limits: body {settings.LENS_MAX_BODY_BYTES} bytes, compressed and inflated (`LENS_MAX_BODY_BYTES`),
{settings.LENS_MAX_BATCH_EVENTS} spans a request (`LENS_MAX_BATCH_EVENTS`), the ingest rate limit.
"""


class OtlpTracesView(APIView):
    throttle_classes = [IngestThrottle]

    def get_permissions(self):
        # Any other method is a 405 for whoever asks, not a 403 that hints at the scope.
        return [CanIngest()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        operation_id="otlp_traces_export",
        summary="Export OTLP traces",
        description=OTLP_DESCRIPTION,
        request={
            codec.PROTOBUF: {"type": "string", "format": "binary", "description": "ExportTraceServiceRequest"},
            codec.JSON: {"type": "object", "description": "ExportTraceServiceRequest in OTLP/JSON"},
        },
        responses=_responses(),
    )
    def post(self, request):
        media = codec.media_type(request.content_type)
        if media is None:
            return _failure(
                415, codec.JSON,
                f"unsupported Content-Type {request.content_type[:80]!r}: send application/x-protobuf or application/json",
            )
        limit = settings.LENS_MAX_BODY_BYTES
        body = request.read(limit + 1)
        if len(body) > limit:
            return _failure(413, media, f"the body is over the limit of {limit} bytes")
        try:
            export = codec.request_decode(
                body=body, media=media, content_encoding=request.META.get("HTTP_CONTENT_ENCODING"), max_bytes=limit
            )
        except codec.OtlpBodyError as exc:
            return _failure(exc.status, media, str(exc))
        count = codec.request_span_count(export)
        if count > settings.LENS_MAX_BATCH_EVENTS:
            return _failure(400, media, f"{count} spans is over the limit of {settings.LENS_MAX_BATCH_EVENTS} a request")
        receipt = services.otlp_spans_receive(org=request_caller(request).org, spans=list(codec.request_spans(export)))
        body = codec.response_encode(media=media, rejected=receipt.rejected_count, message=receipt.message)
        return HttpResponse(body, content_type=media)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        detail = response.data.get("detail") if isinstance(getattr(response, "data", None), dict) else None
        failure = _failure(
            response.status_code, codec.media_type(self.request.content_type) or codec.JSON, str(detail or "")
        )
        for header in ("Retry-After", "WWW-Authenticate"):
            if header in response:
                failure[header] = response[header]
        return failure
