"""What the read API returns, and the parameters it takes, for the OpenAPI schema.

Events are rendered by `audit.wire.event_wire` (the one wire form); the serializers
here describe that form for the schema, they do not produce it. Traces are rendered by
`trace_summary_data`.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from audit.filters import MAX_METADATA_FILTERS, TIME_HELP
from audit.models import Decision, Outcome, TraceSummary
from audit.validation import format_timestamp


def trace_summary_data(summary: TraceSummary) -> dict:
    allow = summary.calls - summary.deny_count - summary.alert_count
    return {
        "trace_id": summary.trace_id,
        "started_at": format_timestamp(summary.started_at),
        "ended_at": format_timestamp(summary.ended_at),
        "calls": summary.calls,
        "actors": summary.actors,
        "slugs": summary.slugs,
        "decisions": {"allow": allow, "deny": summary.deny_count, "alert": summary.alert_count},
        "error_count": summary.error_count,
        "total_duration_ms": summary.total_duration_ms,
    }


# --- schema: responses ---------------------------------------------------------------


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


class EventSerializer(serializers.Serializer):
    """An audit event in the wire format of SPEC §1, plus what Lens adds."""

    id = serializers.CharField(help_text="The sender's event id; the id in every URL.")
    timestamp = serializers.DateTimeField(help_text="When the gateway received the call (UTC).")
    trace_id = serializers.CharField(help_text="Calls sharing it form one chain.")
    actor = serializers.CharField(allow_null=True, help_text="null means anonymous.")
    slug = serializers.CharField(help_text="The connection the call went through.")
    method = serializers.CharField()
    tool = serializers.CharField(allow_null=True)
    arguments = serializers.JSONField(allow_null=True, help_text="The tool-call arguments, as sent.")
    decision = serializers.ChoiceField(choices=Decision.values)
    rule = RuleSerializer(allow_null=True, help_text="The rule that fired; null when none matched.")
    reason = serializers.CharField(allow_null=True)
    metadata = serializers.DictField(child=serializers.JSONField(), help_text="Flat: string → string/number/bool.")
    duration_ms = serializers.FloatField(allow_null=True)
    outcome = serializers.ChoiceField(choices=Outcome.values)
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    server = ServerSerializer(allow_null=True)
    received_at = serializers.DateTimeField(help_text="Added by Lens: when it received the event.")
    seq = serializers.IntegerField(help_text="Added by Lens: position in the organization's hash chain.")
    chain_hash = serializers.CharField(help_text="Added by Lens: SHA-256 chaining this event to the previous one.")


class EventPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="Older events; null on the last page.")
    previous = serializers.URLField(allow_null=True, help_text="Newer events; null on the first page.")
    results = EventSerializer(many=True)


class DecisionCountsSerializer(serializers.Serializer):
    allow = serializers.IntegerField()
    deny = serializers.IntegerField()
    alert = serializers.IntegerField()


class TraceSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField()
    calls = serializers.IntegerField()
    actors = serializers.ListField(child=serializers.CharField(allow_null=True))
    slugs = serializers.ListField(child=serializers.CharField())
    decisions = DecisionCountsSerializer()
    error_count = serializers.IntegerField(help_text="Calls whose outcome was not success.")
    total_duration_ms = serializers.FloatField()


class TracePageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TraceSerializer(many=True)


class TraceChainSerializer(serializers.Serializer):
    trace = TraceSerializer()
    events = EventSerializer(many=True, help_text="In order: timestamp, then arrival.")
    events_truncated = serializers.BooleanField(help_text="True when the trace has more events than are listed.")


class ParameterErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text="Parameter name → what is wrong."
    )


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


# --- schema: parameters --------------------------------------------------------------


def _repeated(name, description, enum=None):
    return OpenApiParameter(
        name, {"type": "array", "items": {"type": "string", **({"enum": enum} if enum else {})}},
        explode=True, style="form", description=f"{description} Exact match; repeat for OR.",
    )


FILTER_PARAMETERS = [
    _repeated("actor", "`X-Igris-User` of the call."),
    _repeated("slug", "Connection slug (`github-prod`)."),
    _repeated("tool", "Tool name (`create_issue`)."),
    _repeated("method", "MCP method (`tools/call`)."),
    _repeated("decision", "Policy decision.", Decision.values),
    _repeated("outcome", "How the call ended.", Outcome.values),
    OpenApiParameter("trace_id", OpenApiTypes.STR, description="Exact trace id."),
    OpenApiParameter(
        "metadata.<key>", OpenApiTypes.STR,
        description=(
            "Replace `<key>` with a metadata key: `metadata.env=production`. Several keys are ANDed; a repeated "
            "key ORs. A value that reads as a JSON number or boolean also matches that number or boolean "
            f"(`metadata.ticket=4711` finds 4711 and \"4711\"). At most {MAX_METADATA_FILTERS} keys."
        ),
    ),
    OpenApiParameter("since", OpenApiTypes.STR, description=f"Inclusive lower bound: {TIME_HELP}."),
    OpenApiParameter("until", OpenApiTypes.STR, description=f"Inclusive upper bound: {TIME_HELP}."),
    OpenApiParameter("q", OpenApiTypes.STR, description="Case-insensitive text in actor, slug, tool, trace id or error."),
]
PAGE_PARAMETERS = [
    OpenApiParameter("cursor", OpenApiTypes.STR, description="Opaque; follow the `next`/`previous` links."),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="1–500, default 50."),
]
