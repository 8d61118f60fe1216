"""Legal holds (SPEC §11), for the organization's admins: `POST/GET /api/v1/holds`,
`GET/DELETE /api/v1/holds/<id>`. Placing and releasing a hold is recorded in the access log.
Another organization's hold (or a released one) is a 404."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from audit.accounts.access_log import access_record
from audit.accounts.caller import request_caller
from audit.accounts.models import AccessRecord
from audit.api import serializers as s
from audit.api.alerts import ADMIN_ERRORS, ID_PATH, NOT_FOUND, AlertsView
from audit.api.base import PAGE_PARAMS
from audit.retention import holds


class HoldSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    reason = serializers.CharField(max_length=500, help_text="Why the events are held (a case, a request).")
    query = serializers.CharField(
        max_length=holds.MAX_QUERY,
        help_text="A query in the Lens query language (SPEC §7): the events it matches are never removed while "
        "the hold is active. Relative times (`since:30d`) are read at each retention run: prefer absolute ones.",
    )
    created_at = s.TimestampField(read_only=True)
    created_by = serializers.CharField(read_only=True, help_text="Who placed it, as the access log names them.")


class HoldPageSerializer(s.PageSerializer):
    results = HoldSerializer(many=True)


class HoldCollectionView(AlertsView):
    extra_params = PAGE_PARAMS

    @extend_schema(operation_id="holds_list", summary="List active legal holds", parameters=s.PAGE_PARAMETERS,
                   responses={200: HoldPageSerializer, **ADMIN_ERRORS})
    def get(self, request):
        return self.page(request, holds.holds_active(org=self.org), HoldSerializer)

    @extend_schema(operation_id="holds_create", summary="Place a legal hold", request=HoldSerializer,
                   responses={201: HoldSerializer, **ADMIN_ERRORS})
    def post(self, request):
        data = self.valid(HoldSerializer)
        try:
            hold = holds.hold_place(
                org=self.org, reason=data["reason"], query=data["query"], by=request_caller(request).name
            )
        except holds.HoldError as exc:
            raise serializers.ValidationError(exc.errors) from None
        access_record(request=request, action=AccessRecord.Action.HOLD_PLACE, target=str(hold.pk),
                      filters={"q": [hold.query]})
        return Response(HoldSerializer(hold).data, status=status.HTTP_201_CREATED)


class HoldDetailView(AlertsView):
    def hold(self, pk):
        hold = holds.hold_get(org=self.org, hold_id=pk)
        if hold is None:
            raise Http404("No such hold.")
        return hold

    @extend_schema(operation_id="holds_retrieve", summary="One active legal hold", parameters=ID_PATH,
                   responses={200: HoldSerializer, **ADMIN_ERRORS, **NOT_FOUND})
    def get(self, request, pk):
        return Response(HoldSerializer(self.hold(pk)).data)

    @extend_schema(operation_id="holds_destroy", summary="Release a legal hold", parameters=ID_PATH,
                   description="The events it held may be removed by the next retention run.",
                   responses={204: None, **ADMIN_ERRORS, **NOT_FOUND})
    def delete(self, request, pk):
        hold = self.hold(pk)
        holds.hold_release(hold=hold, by=request_caller(request).name)
        access_record(request=request, action=AccessRecord.Action.HOLD_RELEASE, target=str(hold.pk),
                      filters={"q": [hold.query]})
        return Response(status=status.HTTP_204_NO_CONTENT)
