"""The shapes the API answers with, and the parameters it takes, for the OpenAPI schema.

Events are rendered by `audit.events.wire.event_wire` (the one wire form, fast);
`EventSerializer` describes that form for the schema and is built from the event's
declaration. Traces and access records are rendered by the serializers here.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from audit.events import fields as f
from audit.events.wire import format_timestamp
from audit.explore import vocabulary as v
from audit.explore.pagination import CURSOR_PARAM, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PAGE_SIZE_PARAM


@extend_schema_field(OpenApiTypes.DATETIME)
class TimestampField(serializers.Field):
    """A time as Lens writes it: RFC 3339, UTC, microseconds, `Z`."""

    def to_representation(self, value):
        return format_timestamp(value)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class ParameterErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text="Parameter name → what is wrong."
    )


# --- events ---------------------------------------------------------------------------


class RuleSerializer(serializers.Serializer):
    id = serializers.CharField(required=False)
    policy = serializers.CharField(required=False)
    index = serializers.IntegerField(required=False)
    tool = serializers.CharField(required=False, help_text="The tool pattern the rule matches (`list_*`).")
    action = serializers.CharField(required=False)
    conditions = serializers.JSONField(required=False)


class ServerSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()


# Optional fields are null on output when not sent, except those Lens always fills:
# the id (made when absent), metadata ({} when absent) and what Lens adds.
_NEVER_NULL = {"id", "metadata", *(field.name for field in f.ADDED_FIELDS if not field.nullable)}


def _schema_field(field: f.EventField, **overrides) -> serializers.Field:
    options = {"help_text": field.help, "allow_null": not field.required and field.name not in _NEVER_NULL, **overrides}
    kinds = {
        f.TEXT: lambda: serializers.CharField(**options),
        f.TIME: lambda: serializers.DateTimeField(**options),
        f.CHOICE: lambda: serializers.ChoiceField(choices=list(field.choices), **options),
        f.NUMBER: lambda: serializers.FloatField(**options),
        f.INTEGER: lambda: serializers.IntegerField(**options),
        f.BOOLEAN: lambda: serializers.BooleanField(**options),
        f.OBJECT: lambda: serializers.JSONField(**options),
        f.RULE: lambda: RuleSerializer(**options),
        f.METADATA: lambda: serializers.DictField(child=serializers.JSONField(), **options),
        f.SERVER: lambda: ServerSerializer(**options),
    }
    return kinds[field.kind]()


EventSerializer = type(
    "EventSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "An audit event in the wire format of SPEC §1, plus what Lens adds.",
        **{field.name: _schema_field(field) for field in f.OUTPUT_FIELDS},
    },
)


def _input_field(field: f.EventField) -> serializers.Field:
    """A sender's field as the ingest body takes it (the door, audit/ingest/door.py, decides)."""
    options = {"help_text": field.help, "required": field.required, "allow_null": not field.required}
    if field.kind == f.TEXT and field.pattern:
        return serializers.RegexField(field.pattern, max_length=field.max_length, **options)
    if field.kind == f.TEXT:
        return serializers.CharField(max_length=field.max_length, **options)
    if field.kind in (f.NUMBER, f.INTEGER):
        number = serializers.FloatField if field.kind == f.NUMBER else serializers.IntegerField
        return number(min_value=field.minimum, max_value=field.maximum, **options)
    return _schema_field(field, **options)


# Named "Event" for the schema: with request components split off, it is `EventRequest`,
# the body of an ingest, beside the `Event` an answer holds.
EventInputSerializer = extend_schema_serializer(component_name="Event")(type(
    "EventInputSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "An audit event as a sender writes it (SPEC §1); unknown fields are refused.",
        **{field.name: _input_field(field) for field in f.SENDER_FIELDS},
    },
))


class PageSerializer(serializers.Serializer):
    """What every cursor-paginated list answers besides its `results`."""

    next = serializers.URLField(allow_null=True, help_text="The next page (older); null on the last page.")
    previous = serializers.URLField(allow_null=True, help_text="The page before (newer); null on the first page.")
    next_cursor = serializers.CharField(
        allow_null=True, help_text="The `cursor` parameter of the next page (the one inside `next`); null on the last."
    )
    previous_cursor = serializers.CharField(
        allow_null=True, help_text="The `cursor` parameter of the page before; null on the first."
    )


class EventPageSerializer(PageSerializer):
    results = EventSerializer(many=True)


# --- traces ---------------------------------------------------------------------------


class DecisionCountsSerializer(serializers.Serializer):
    allow = serializers.IntegerField()
    deny = serializers.IntegerField()
    alert = serializers.IntegerField()


class TraceSerializer(serializers.Serializer):
    """A trace summary (renders `TraceSummary` rows)."""

    trace_id = serializers.CharField()
    started_at = TimestampField()
    ended_at = TimestampField()
    calls = serializers.IntegerField()
    actors = serializers.ListField(child=serializers.CharField(allow_null=True))
    slugs = serializers.ListField(child=serializers.CharField())
    decisions = serializers.SerializerMethodField()
    error_count = serializers.IntegerField(help_text="Calls whose outcome was not success.")
    total_duration_ms = serializers.FloatField()

    @extend_schema_field(DecisionCountsSerializer)
    def get_decisions(self, summary):
        allow = summary.calls - summary.deny_count - summary.alert_count
        return {"allow": allow, "deny": summary.deny_count, "alert": summary.alert_count}


class TracePageSerializer(PageSerializer):
    results = TraceSerializer(many=True)


class TraceChainSerializer(serializers.Serializer):
    trace = TraceSerializer()
    events = EventSerializer(many=True, help_text="In order: timestamp, then arrival; a page of them.")
    events_truncated = serializers.BooleanField(help_text="True when the chain goes on past this page (see `next`).")
    next = serializers.URLField(allow_null=True, help_text="The rest of the chain; null on its last page.")
    next_cursor = serializers.CharField(allow_null=True, help_text="The `cursor` parameter inside `next`.")


# --- parameters -----------------------------------------------------------------------


def _filter_parameter(term: v.FilterTerm) -> OpenApiParameter:
    if term.repeats:
        items = {"type": "string", **({"enum": list(term.choices)} if term.choices else {})}
        return OpenApiParameter(
            term.name, {"type": "array", "items": items}, explode=True, style="form",
            description=f"{term.help} Exact match; repeat for OR.",
        )
    return OpenApiParameter(term.name, OpenApiTypes.STR, description=term.help)


# SPEC §3's `metadata.<key>` parameters are named after keys no schema can list; they
# are described in words (METADATA_HELP) and the schema declares the `metadata` pairs.
FILTER_PARAMETERS = [
    *(_filter_parameter(term) for term in v.TERMS),
    OpenApiParameter(
        v.METADATA_PARAM, {"type": "array", "items": {"type": "string", "pattern": "^[^=]+=", "maxLength": 1000}},
        explode=True, style="form", description=f"{v.METADATA_PAIRS_HELP}\n\nSPEC §3's form: {v.METADATA_HELP}",
    ),
]
PAGE_PARAMETERS = [
    OpenApiParameter(CURSOR_PARAM, OpenApiTypes.STR, description="Opaque; follow the `next`/`previous` links."),
    OpenApiParameter(PAGE_SIZE_PARAM, OpenApiTypes.INT, description=f"1–{MAX_PAGE_SIZE}, default {DEFAULT_PAGE_SIZE}."),
]
