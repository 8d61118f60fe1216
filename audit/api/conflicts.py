"""GET /api/v1/conflicts: events kept out because their id was taken by other content."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from audit.accounts.caller import request_caller
from audit.api import serializers as s
from audit.api.base import PAGE_PARAMS, READ_ERRORS, ReadView, api_page
from audit.ingest.selectors import conflict_list


class ConflictSerializer(serializers.Serializer):
    event_id = serializers.CharField(help_text="The id that was already taken.")
    detected_at = s.TimestampField()
    content_hash = serializers.CharField(help_text="SHA-256 of the kept-out content (docs/integrity.md).")
    in_receipt = serializers.BooleanField(
        help_text="True when the sender was told `conflict` in its receipt; false when a worker found it later."
    )
    event = serializers.JSONField(source="payload", help_text="The kept-out event, in the wire format, as sent.")


class ConflictPageSerializer(s.PageSerializer):
    results = ConflictSerializer(many=True)


class ConflictListView(ReadView):
    extra_params = PAGE_PARAMS

    @extend_schema(
        operation_id="conflicts_list",
        summary="Conflicts kept out",
        description=(
            "Events that arrived with an id the organization already had, with other content: kept out, never "
            "overwriting the first. Newest first, cursor-paginated. The stored event is "
            "`/api/v1/audit-events/<event_id>`."
        ),
        parameters=[*s.PAGE_PARAMETERS],
        responses={200: ConflictPageSerializer, **READ_ERRORS},
    )
    def get(self, request):
        conflicts = conflict_list(org_id=request_caller(request).org.pk)
        page = api_page(conflicts, request, time_field="detected_at")
        self.record(request, "conflict-list")
        return Response(page.envelope(ConflictSerializer(page.items, many=True).data))
