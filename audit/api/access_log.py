"""GET /api/v1/access-log: who read or exported the organization's events, for its admins."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from audit.accounts import access_log
from audit.accounts.caller import request_caller
from audit.accounts.models import AccessRecord
from audit.api import serializers as s
from audit.api.base import PAGE_PARAMS, ReadView, api_page
from audit.api.permissions import IsOrgAdmin


class AccessRecordSerializer(serializers.Serializer):
    at = s.TimestampField()
    actor = serializers.CharField(help_text="`user:<username>` for a login, or `key:<prefix> (name)` for an API key.")
    address = serializers.CharField(allow_null=True)
    action = serializers.ChoiceField(choices=AccessRecord.Action.values)
    path = serializers.CharField()
    target = serializers.CharField(help_text="The event or trace id of a single read; empty for lists.")
    format = serializers.CharField()
    filters = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class AccessRecordPageSerializer(s.PageSerializer):
    results = AccessRecordSerializer(many=True)


class AccessLogView(ReadView):
    permission_classes = [IsOrgAdmin]
    extra_params = PAGE_PARAMS

    @extend_schema(
        operation_id="access_log_list",
        summary="Who read or exported events",
        description=(
            "Every read of events through the API (lists, single events, traces, exports): who, when, from "
            "which address, the path, and the filters used. Newest first, cursor-paginated. Only for the "
            "organization's admins: signed in as one, or with a key that has the `admin` scope."
        ),
        parameters=[*s.PAGE_PARAMETERS],
        responses={
            200: AccessRecordPageSerializer,
            400: OpenApiResponse(s.ParameterErrorSerializer, description="A parameter is invalid."),
            401: s.DetailSerializer,
            403: OpenApiResponse(s.DetailSerializer, description="Not an admin of the organization."),
        },
    )
    def get(self, request):
        records = access_log.access_record_list(org_id=request_caller(request).org.pk)
        page = api_page(records, request, time_field="at")
        return Response(page.envelope(AccessRecordSerializer(page.items, many=True).data))
