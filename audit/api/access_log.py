"""GET /api/v1/access-log: who read or exported the organization's events, for its admins."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import access_log
from audit.api import serializers as s
from audit.api.pagination import CURSOR_PARAM, PAGE_SIZE_PARAM, KeysetPagination, QueryParamError
from audit.api.throttling import ReadThrottle
from audit.models import AccessRecord
from audit.validation import format_timestamp

PAGES = KeysetPagination(field="at")


class IsOrgAdmin(permissions.BasePermission):
    message = "The access log is for your organization's admins, signed in."

    def has_permission(self, request, view):
        return access_log.is_org_admin(user=request.user)


def access_record_data(record: AccessRecord) -> dict:
    return {
        "at": format_timestamp(record.at),
        "actor": record.actor,
        "address": record.address,
        "action": record.action,
        "path": record.path,
        "target": record.target,
        "format": record.format,
        "filters": record.filters,
    }


class AccessRecordSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    actor = serializers.CharField(help_text="A login's username, or `key:<prefix> (name)` for an API key.")
    address = serializers.CharField(allow_null=True)
    action = serializers.ChoiceField(choices=AccessRecord.Action.values)
    path = serializers.CharField()
    target = serializers.CharField(help_text="The event or trace id of a single read; empty for lists.")
    format = serializers.CharField()
    filters = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class AccessRecordPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AccessRecordSerializer(many=True)


class AccessLogView(APIView):
    permission_classes = [IsOrgAdmin]
    throttle_classes = [ReadThrottle]

    @extend_schema(
        operation_id="access_log_list",
        summary="Who read or exported events",
        description=(
            "Every read of events through the API (lists, single events, traces, exports): who, when, from "
            "which address, the path, and the filters used. Newest first, cursor-paginated. Only for admins "
            "of the organization signed in with a session; API keys get 403."
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
        for name in request.query_params:
            if name not in (CURSOR_PARAM, PAGE_SIZE_PARAM):
                return self._bad(QueryParamError(name, "is not a parameter of this endpoint"))
        try:
            # IsOrgAdmin made sure this is a signed-in member; the id spares loading the organization.
            records = access_log.access_record_list(org_id=request.user.membership.org_id)
            page = PAGES.paginate(records, request)
        except QueryParamError as exc:
            return self._bad(exc)
        results = [access_record_data(record) for record in page.items]
        return Response({"next": page.next_url, "previous": page.previous_url, "results": results})

    def _bad(self, exc):
        problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.errors.items())
        return Response({"detail": f"Invalid query: {problems}", "errors": exc.errors}, status=400)
