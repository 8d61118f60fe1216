"""The alerts API (SPEC §12), for the organization's admins: destinations, alert rules,
and the deliveries with each attempt. Another organization's ids are 404."""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from audit.accounts.caller import request_caller
from audit.alerts import selectors, services
from audit.alerts.models import AlertRule, Delivery, Destination
from audit.api import serializers as s
from audit.api.base import PAGE_PARAMS, ReadView, api_page
from audit.api.permissions import IsOrgAdmin

ADMIN_ERRORS = {
    400: OpenApiResponse(s.ParameterErrorSerializer, description="A parameter or field is invalid."),
    401: s.DetailSerializer,
    403: OpenApiResponse(s.DetailSerializer, description="Not an admin of the organization."),
    429: OpenApiResponse(s.DetailSerializer, description="Over the rate limit; see Retry-After."),
}
NOT_FOUND = {404: OpenApiResponse(s.DetailSerializer, description="No such id in your organization.")}
ID_PATH = [OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)]


class AlertsView(ReadView):
    permission_classes = [IsOrgAdmin]
    parser_classes = [JSONParser]  # bodies are JSON; one request media type for the schema and its clients

    @property
    def org(self):
        return request_caller(self.request).org

    def valid(self, serializer_class, *, partial=False) -> dict:
        serializer = serializer_class(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def page(self, request, queryset, serializer_class):
        page = api_page(queryset, request, time_field="created_at")
        return Response(page.envelope(serializer_class(page.items, many=True).data))


def _service_errors(call):
    """A services.AlertsError is a 400 naming the field."""
    try:
        return call()
    except services.AlertsError as exc:
        raise serializers.ValidationError(exc.errors) from None


# --- destinations ---------------------------------------------------------------------


class DestinationSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=Destination.Kind.choices)
    url = serializers.CharField(
        max_length=2000, help_text="https (http only to LENS_DESTINATION_ALLOWED_HOSTS). Slack's is shown as its host."
    )
    secret = serializers.CharField(
        write_only=True, required=False, max_length=200,
        help_text="webhook: `whsec_<base64>`; Lens makes one when absent and shows it once, in the answer.",
    )
    token = serializers.CharField(write_only=True, required=False, max_length=200, help_text="splunk_hec: the HEC token.")
    paused = serializers.BooleanField(required=False, help_text="Paused: matching goes on and deliveries wait.")
    paused_reason = serializers.CharField(read_only=True)
    failing_since = s.TimestampField(read_only=True, allow_null=True)
    created_at = s.TimestampField(read_only=True)


class DestinationPageSerializer(s.PageSerializer):
    results = DestinationSerializer(many=True)


class DestinationCreatedSerializer(DestinationSerializer):
    secret = serializers.CharField(read_only=True, help_text="Only when Lens made the secret: shown this once.")


def _secret(data: dict, kind: str) -> str | None:
    if kind != Destination.Kind.SPLUNK_HEC and "token" in data:
        raise serializers.ValidationError({"token": ["only a splunk_hec destination has a token"]})
    if kind == Destination.Kind.SPLUNK_HEC and "secret" in data:
        raise serializers.ValidationError({"secret": ["a splunk_hec destination has a token, not a secret"]})
    return data.get("token") if kind == Destination.Kind.SPLUNK_HEC else data.get("secret")


class DestinationCollectionView(AlertsView):
    extra_params = PAGE_PARAMS

    @extend_schema(operation_id="destinations_list", summary="List destinations", parameters=s.PAGE_PARAMETERS,
                   responses={200: DestinationPageSerializer, **ADMIN_ERRORS})
    def get(self, request):
        return self.page(request, selectors.destination_list(org=self.org), DestinationSerializer)

    @extend_schema(
        operation_id="destinations_create", summary="Add a destination", request=DestinationSerializer,
        description="The URL must resolve to public addresses only, unless its host is in "
        "LENS_DESTINATION_ALLOWED_HOSTS. Secrets and tokens are stored sealed and never shown again.",
        responses={201: DestinationCreatedSerializer, **ADMIN_ERRORS},
    )
    def post(self, request):
        data = self.valid(DestinationSerializer)
        destination, generated = _service_errors(lambda: services.destination_create(
            org=self.org, name=data["name"], kind=data["kind"], url=data["url"], secret=_secret(data, data["kind"])
        ))
        if data.get("paused"):
            services.destination_pause(destination=destination)
        answer = DestinationSerializer(destination).data
        if generated:
            answer["secret"] = generated
        return Response(answer, status=status.HTTP_201_CREATED)


class DestinationDetailView(AlertsView):
    def destination(self, pk):
        return selectors.destination_get(org=self.org, destination_id=pk)

    @extend_schema(operation_id="destinations_retrieve", summary="One destination", parameters=ID_PATH,
                   responses={200: DestinationSerializer, **ADMIN_ERRORS, **NOT_FOUND})
    def get(self, request, pk):
        return Response(DestinationSerializer(self.destination(pk)).data)

    @extend_schema(
        operation_id="destinations_update", summary="Change, pause or resume a destination", parameters=ID_PATH,
        request=DestinationSerializer(partial=True),
        description="`paused: false` resumes: what waited is sent first, in order. A new secret or token "
        "replaces the old; give a Slack destination's whole URL to change it.",
        responses={200: DestinationSerializer, **ADMIN_ERRORS, **NOT_FOUND},
    )
    def patch(self, request, pk):
        destination = self.destination(pk)
        data = self.valid(DestinationSerializer, partial=True)
        if "kind" in data and data["kind"] != destination.kind:
            raise serializers.ValidationError({"kind": ["cannot change; add a new destination instead"]})
        _service_errors(lambda: services.destination_update(
            destination=destination, name=data.get("name"), url=data.get("url"),
            secret=_secret(data, destination.kind), paused=data.get("paused"),
        ))
        return Response(DestinationSerializer(destination).data)

    @extend_schema(operation_id="destinations_destroy", summary="Delete a destination", parameters=ID_PATH,
                   responses={204: None, **ADMIN_ERRORS, **NOT_FOUND})
    def delete(self, request, pk):
        _service_errors(lambda: services.destination_delete(destination=self.destination(pk)))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- deliveries -----------------------------------------------------------------------


class AttemptSerializer(serializers.Serializer):
    at = s.TimestampField()
    status_code = serializers.IntegerField(allow_null=True, help_text="The answer's code; null when none came.")
    ok = serializers.BooleanField()
    error = serializers.CharField(help_text="What went wrong (no answer, or the start of the answer).")
    duration_ms = serializers.FloatField()


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    webhook_id = serializers.CharField(source="message_id", help_text="The same for every attempt.")
    destination = serializers.IntegerField(source="destination_id")
    rule = serializers.IntegerField(source="rule_id", allow_null=True, help_text="Null for a test.")
    event_id = serializers.CharField(help_text="An alert's event; empty for a stream's batch and a test.")
    first_seq = serializers.IntegerField(allow_null=True)
    last_seq = serializers.IntegerField(allow_null=True)
    events = serializers.IntegerField(source="event_count")
    status = serializers.ChoiceField(choices=Delivery.Status.values)
    next_attempt_at = s.TimestampField(allow_null=True, help_text="The next try; null once delivered or given up.")
    delivered_at = s.TimestampField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    created_at = s.TimestampField()
    attempts = AttemptSerializer(source="attempt_log.all", many=True)


class DeliveryPageSerializer(s.PageSerializer):
    results = DeliverySerializer(many=True)


class DestinationTestView(AlertsView):
    @extend_schema(
        operation_id="destinations_test", summary="Send a test message now", parameters=ID_PATH, request=None,
        description="POSTs a `lens.test` message at once and answers with the recorded delivery (not retried).",
        responses={200: DeliverySerializer, **ADMIN_ERRORS, **NOT_FOUND},
    )
    def post(self, request, pk):
        destination = selectors.destination_get(org=self.org, destination_id=pk)
        return Response(DeliverySerializer(services.destination_test(destination=destination)).data)


class DeliveryListView(AlertsView):
    extra_params = (*PAGE_PARAMS, *selectors.DELIVERY_FILTERS)

    @extend_schema(
        operation_id="deliveries_list", summary="Deliveries and their attempts",
        description="Newest first, each with every attempt (status code, error, duration) and the next try.",
        parameters=[
            OpenApiParameter("destination", OpenApiTypes.INT), OpenApiParameter("rule", OpenApiTypes.INT),
            OpenApiParameter("status", OpenApiTypes.STR, enum=Delivery.Status.values), *s.PAGE_PARAMETERS,
        ],
        responses={200: DeliveryPageSerializer, **ADMIN_ERRORS},
    )
    def get(self, request):
        deliveries = selectors.delivery_list(org=self.org, filters=request.query_params)
        return self.page(request, deliveries, DeliverySerializer)


# --- alert rules ----------------------------------------------------------------------


class AlertRuleSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    query = serializers.CharField(max_length=2000, help_text=f"A §7 query; `{AlertRule.EVERYTHING}` streams every event.")
    destination = serializers.IntegerField(source="destination_id", help_text="A destination's id.")
    enabled = serializers.BooleanField(required=False, default=True)
    position = serializers.IntegerField(read_only=True, help_text="The last chain seq matched.")
    created_at = s.TimestampField(read_only=True)


class AlertRulePageSerializer(s.PageSerializer):
    results = AlertRuleSerializer(many=True)


class AlertRuleCollectionView(AlertsView):
    extra_params = PAGE_PARAMS

    @extend_schema(operation_id="alert_rules_list", summary="List alert rules", parameters=s.PAGE_PARAMETERS,
                   responses={200: AlertRulePageSerializer, **ADMIN_ERRORS})
    def get(self, request):
        return self.page(request, selectors.rule_list(org=self.org), AlertRuleSerializer)

    @extend_schema(operation_id="alert_rules_create", summary="Add an alert rule", request=AlertRuleSerializer,
                   description="It matches events stored from now on.",
                   responses={201: AlertRuleSerializer, **ADMIN_ERRORS})
    def post(self, request):
        data = self.valid(AlertRuleSerializer)
        destination = _destination_field(self.org, data["destination_id"])
        rule = _service_errors(lambda: services.rule_create(
            org=self.org, name=data["name"], query=data["query"], destination=destination, enabled=data["enabled"]
        ))
        return Response(AlertRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


def _destination_field(org, destination_id):
    try:
        return selectors.destination_get(org=org, destination_id=destination_id)
    except Http404:
        raise serializers.ValidationError({"destination": ["no such destination"]}) from None


class AlertRuleDetailView(AlertsView):
    def rule(self, pk):
        return selectors.rule_get(org=self.org, rule_id=pk)

    @extend_schema(operation_id="alert_rules_retrieve", summary="One alert rule", parameters=ID_PATH,
                   responses={200: AlertRuleSerializer, **ADMIN_ERRORS, **NOT_FOUND})
    def get(self, request, pk):
        return Response(AlertRuleSerializer(self.rule(pk)).data)

    @extend_schema(
        operation_id="alert_rules_update", summary="Change, enable or disable an alert rule", parameters=ID_PATH,
        request=AlertRuleSerializer(partial=True),
        description="A disabled rule skips what is stored meanwhile; enabled again, it matches from then on.",
        responses={200: AlertRuleSerializer, **ADMIN_ERRORS, **NOT_FOUND},
    )
    def patch(self, request, pk):
        rule = self.rule(pk)
        data = self.valid(AlertRuleSerializer, partial=True)  # partial: no default for `enabled`
        destination = _destination_field(self.org, data["destination_id"]) if "destination_id" in data else None
        _service_errors(lambda: services.rule_update(
            rule=rule, name=data.get("name"), query=data.get("query"), destination=destination,
            enabled=data.get("enabled"),
        ))
        return Response(AlertRuleSerializer(rule).data)

    @extend_schema(operation_id="alert_rules_destroy", summary="Delete an alert rule (and its deliveries)",
                   parameters=ID_PATH, responses={204: None, **ADMIN_ERRORS, **NOT_FOUND})
    def delete(self, request, pk):
        services.rule_delete(rule=self.rule(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
