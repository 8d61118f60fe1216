"""POST /api/v1/audit-events: the thin HTTP face of `audit.ingest.receive.events_receive` (SPEC §2)."""

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from audit.accounts.caller import request_caller
from audit.api.permissions import CanIngest, CanRead
from audit.api.serializers import DetailSerializer, EventInputSerializer
from audit.api.throttling import IngestThrottle, ReadThrottle
from audit.events.fields import RESERVED_IDS
from audit.ingest.door import BodyError
from audit.ingest.receive import STATUSES, QueueUnavailable, events_receive


class ReceiptSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request.")
    id = serializers.CharField(allow_null=True, help_text="The event id (generated when the sender gave none).")
    status = serializers.ChoiceField(choices=list(STATUSES))
    errors = serializers.DictField(child=serializers.CharField(), required=False, help_text="Field → what is wrong.")


class IngestResponseSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    conflict = serializers.IntegerField()
    invalid = serializers.IntegerField()
    receipts = ReceiptSerializer(many=True)


INGEST_DESCRIPTION = f"""
Send one event object, a JSON array of events, or NDJSON (`Content-Type:
application/x-ndjson`, one event object per line). Each event is an `EventRequest` (SPEC §1);
the schema declares the JSON body as one event so that generated clients can send it, and a
JSON array of them is accepted the same way. Needs a key with the `ingest` scope.

Every item gets a receipt: `accepted`, `duplicate` (same id, same content, stored
once), `conflict` (same id, other content: kept out, never overwrites) or `invalid`
(with an error per field). An event is acknowledged only once it is queued durably.
Receipts are decided against what is stored and what other requests have in flight:
of several requests racing with the same new id and different content, exactly one is
accepted and every other is told `conflict`. Every conflict is recorded
(`GET /api/v1/conflicts`).

Timestamps may be at most {settings.LENS_MAX_CLOCK_SKEW_SECONDS} s ahead of Lens's clock
(`LENS_MAX_CLOCK_SKEW_SECONDS`) and at most {settings.LENS_MAX_EVENT_AGE_DAYS} days old
(`LENS_MAX_EVENT_AGE_DAYS`); the ids {", ".join(f"`{i}`" for i in sorted(RESERVED_IDS))} and the
trace ids `.` and `..` are reserved (they would not lead to their own URL). Such events are `invalid`.

Limits (settings): body {settings.LENS_MAX_BODY_BYTES} bytes (`LENS_MAX_BODY_BYTES`,
413 beyond), {settings.LENS_MAX_BATCH_EVENTS} events a request (`LENS_MAX_BATCH_EVENTS`),
{settings.LENS_MAX_EVENT_BYTES} bytes an event (`LENS_MAX_EVENT_BYTES`, canonical JSON),
rate `{settings.LENS_INGEST_RATE}` requests per key (`LENS_INGEST_RATE`, 429 beyond).
"""


class EventIngestMixin:
    """Adds the ingest POST to the audit-events collection view; GET stays a read."""

    def get_permissions(self):
        return [CanIngest()] if self.request.method == "POST" else [CanRead()]

    def get_throttles(self):
        return [IngestThrottle()] if self.request.method == "POST" else [ReadThrottle()]

    @extend_schema(
        operation_id="audit_events_ingest",
        description=INGEST_DESCRIPTION,
        # JSON is declared as one event (EventInput, derived from audit/events/fields.py), NDJSON as bytes:
        # a generator can write both (a oneOf of an object and an array breaks openapi-python-client's
        # body dispatch). A JSON array of events is accepted as well (see above).
        request={
            "application/json": EventInputSerializer,
            "application/x-ndjson": {"type": "string", "format": "binary",
                                     "description": "One EventRequest object per line."},
        },
        responses={
            202: IngestResponseSerializer,
            207: OpenApiResponse(IngestResponseSerializer, description="Some items were not accepted."),
            400: OpenApiResponse(
                # Receipts when nothing was accepted; `detail` alone when the body is unreadable.
                PolymorphicProxySerializer(
                    component_name="IngestRejected",
                    serializers=[IngestResponseSerializer, DetailSerializer],
                    resource_type_field_name=None,
                ),
                description="Nothing accepted (receipts), or the body is unreadable (`detail`).",
            ),
            401: DetailSerializer,
            403: DetailSerializer,
            413: DetailSerializer,
            429: DetailSerializer,
            503: OpenApiResponse(DetailSerializer, description="The queue is unreachable; retry after Retry-After."),
        },
        examples=[
            OpenApiExample(
                "Receipts",
                response_only=True,
                status_codes=["207"],
                value={
                    "accepted": 1,
                    "duplicate": 0,
                    "conflict": 0,
                    "invalid": 1,
                    "receipts": [
                        {"index": 0, "id": "evt-1", "status": "accepted"},
                        {"index": 1, "id": "evt-2", "status": "invalid", "errors": {"decision": "must be one of …"}},
                    ],
                },
            )
        ],
    )
    def post(self, request, *args, **kwargs):
        body = request.read(settings.LENS_MAX_BODY_BYTES + 1)
        if len(body) > settings.LENS_MAX_BODY_BYTES:
            return Response(
                {"detail": f"body is over the limit of {settings.LENS_MAX_BODY_BYTES} bytes"},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            result = events_receive(org=request_caller(request).org, body=body, content_type=request.content_type)
        except BodyError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except QueueUnavailable:
            return Response(
                {"detail": "events cannot be queued or stored right now; nothing from this request was accepted"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(settings.LENS_RETRY_AFTER_SECONDS)},
            )
        code = 202 if result.all_safe else 400 if result.none_safe else 207
        return Response({**result.counts(), "receipts": result.receipts}, status=code)
