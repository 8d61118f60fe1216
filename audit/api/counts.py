"""Counts API (SPEC §8): histograms of matching events over time and the top values of a field.

Thin faces of audit/explore/counts.py: the same filters as every list (SPEC §3, `q`
included), exact answers, a 400 naming any parameter it cannot use.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from audit.accounts.caller import request_caller
from audit.api import serializers as s
from audit.api.base import READ_ERRORS, ReadView
from audit.explore import counts
from audit.explore.vocabulary import ParameterError

INTERVAL_PARAM, BY_PARAM, LIMIT_PARAM, ORDER_PARAM = "interval", "by", "limit", "order"
MAX_LIMIT = 100
SOURCE_HELP = (
    "`rollup`: counted from the count rollup (days, hours and minutes; the events of the window's partial minutes); "
    "`events`: counted over the matching events themselves, for filters the rollup does not hold (`q`, "
    "`trace_id`, `metadata.<key>`) or a `metadata.<key>` top. Both are exact."
)


class BucketSerializer(serializers.Serializer):
    start = s.TimestampField(help_text="The bucket's start (UTC); it holds events up to the next bucket's start.")
    allow = serializers.IntegerField()
    deny = serializers.IntegerField()
    alert = serializers.IntegerField()


class HistogramSerializer(serializers.Serializer):
    interval = serializers.ChoiceField(choices=list(counts.INTERVALS))
    total = serializers.IntegerField(help_text="Matching events in the buckets.")
    buckets = BucketSerializer(many=True)
    source = serializers.ChoiceField(choices=[counts.ROLLUP, counts.EVENTS], help_text=SOURCE_HELP)


class TopValueSerializer(serializers.Serializer):
    value = serializers.JSONField(allow_null=True, help_text="The field's value; null: none (anonymous actor, no tool…).")
    count = serializers.IntegerField()
    deny = serializers.IntegerField()
    alert = serializers.IntegerField()
    duration_avg_ms = serializers.FloatField(allow_null=True, source="duration_avg")
    duration_max_ms = serializers.FloatField(allow_null=True, source="duration_max")


class TopSerializer(serializers.Serializer):
    by = serializers.CharField()
    total = serializers.IntegerField(help_text="Matching events (all values, not only those listed).")
    results = TopValueSerializer(many=True)
    source = serializers.ChoiceField(choices=[counts.ROLLUP, counts.EVENTS], help_text=SOURCE_HELP)


class HistogramView(ReadView):
    extra_params = (INTERVAL_PARAM,)
    takes_filters = True

    @extend_schema(
        operation_id="audit_events_histogram",
        summary="Matching events over time",
        description=(
            "Exact counts of the matching events per time bucket and decision, every bucket of the window, "
            "oldest first, aligned to UTC (a `1d` bucket is a UTC day). The window is `since`..`until`; without "
            "`since` it starts at the oldest match, without `until` it ends now. Without `interval` one is chosen "
            "for about 60 buckets. An interval that would need more than `LENS_HISTOGRAM_MAX_BUCKETS` buckets "
            "(default 2000) is a 400."
        ),
        parameters=[
            *s.FILTER_PARAMETERS,
            OpenApiParameter(INTERVAL_PARAM, OpenApiTypes.STR, enum=list(counts.INTERVALS), description="Bucket width."),
        ],
        responses={200: HistogramSerializer, **READ_ERRORS},
    )
    def get(self, request, *args, **kwargs):
        interval = request.query_params.get(INTERVAL_PARAM) or None
        histogram = counts.event_histogram(org=request_caller(request).org, filters=request.query_params, interval=interval)
        self.record(request, "event-histogram")
        return Response(HistogramSerializer(histogram).data)


def _limit(text: str | None) -> int:
    if text is None or text == "":
        return 10
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise ParameterError.one(LIMIT_PARAM, f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


class TopView(ReadView):
    extra_params = (BY_PARAM, LIMIT_PARAM, ORDER_PARAM)
    takes_filters = True

    @extend_schema(
        operation_id="stats_top",
        summary="Top values of a field among matching events",
        description=(
            "The values of `by` among the matching events with their exact counts (and denies, alerts, mean and "
            "longest duration), largest count first; `order=deny|alert` ranks by denies or alerts instead (values "
            "with none are left out), `order=duration` by mean duration (the slowest first). `rule` is the id of "
            "the rule that fired; `metadata.<key>` a metadata key's values as the filter writes them (`true`, "
            "`4711`). A null value counts the events without one."
        ),
        parameters=[
            *s.FILTER_PARAMETERS,
            OpenApiParameter(
                BY_PARAM, OpenApiTypes.STR, required=True,
                description=f"One of {', '.join(counts.TOP_BY)}, or metadata.<key>.",
            ),
            OpenApiParameter(LIMIT_PARAM, OpenApiTypes.INT, description=f"1–{MAX_LIMIT}, default 10."),
            OpenApiParameter(ORDER_PARAM, OpenApiTypes.STR, enum=list(counts.TOP_ORDERS), description="Default count."),
        ],
        responses={200: TopSerializer, **READ_ERRORS},
    )
    def get(self, request, *args, **kwargs):
        params = request.query_params
        by = params.get(BY_PARAM)
        if not by:
            raise ParameterError.one(BY_PARAM, f"is required: one of {', '.join(counts.TOP_BY)} or metadata.<key>")
        top = counts.event_top(
            org=request_caller(request).org, by=by, filters=params,
            limit=_limit(params.get(LIMIT_PARAM)), order=params.get(ORDER_PARAM) or "count",
        )
        self.record(request, "stats-top")
        return Response(TopSerializer(top).data)

