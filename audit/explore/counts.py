"""Exact counts of matching events: histograms, totals and top-N (SPEC §8).

Answered from the rollup (audit/ingest/rollups.py) when every filter is one it holds:
decision, slug, actor, tool, method, outcome, and a time window; from its marginals
when the question involves one of those dimensions at most (besides the decision),
which is what histograms, totals, top-N and unfiltered facets mostly ask. The window is cut
into whole UTC days (day rows), the hours left at its ends (hour rows), the minutes
left (minute rows), and the partial minutes at the very ends (a relative `since`
never falls on a minute), which are counted from the events themselves on the time
index: exact, and never more than two minutes of events. Any other filter (`q`,
`trace_id`, `metadata.<key>`) counts the matching events with GROUP BY: exact too,
but it reads every match. Each answer says which it used (`source`).
"""

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from math import log

from django.conf import settings
from django.db import connections
from django.db.models import Count, Expression, F, Max, Min, Q, QuerySet, Sum, TextField
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from audit.accounts.models import Organization
from audit.events.fields import DECISIONS
from audit.events.models import AuditEvent
from audit.explore import vocabulary as v
from audit.explore.filters import EventFilterSet, filterset_bind, metadata_key_error
from audit.ingest.models import EventMarginal, EventRollup
from audit.ingest.rollups import (
    DAY, GRAINS, HOUR, MARGINAL_DIMENSIONS, MINUTE, marginal_dimensions, period_ceil, period_floor,
)

INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}
AUTO_BUCKETS = 60
# The terms the rollup holds as columns of the same name: the exact-match filters.
ROLLUP_TERMS = tuple(term for term in v.TERMS if term.kind in (v.VALUES, v.CHOICE))
TOP_BY = ("actor", "slug", "tool", "method", "rule", "outcome", "decision")
_ROLLUP_COLUMN = {"rule": "rule_id"}
ROLLUP, EVENTS = "rollup", "events"


@dataclass(frozen=True)
class _Part:
    """A piece of the matching events: rollup rows of one grain (summed) or events (counted)."""

    source: str
    rows: QuerySet
    time_column: str  # "start" or "timestamp"
    grain: int = 0  # seconds a rollup row stands for (0: events)

    @property
    def marginal(self) -> bool:
        return self.rows.model is EventMarginal


@dataclass(frozen=True)
class CountScope:
    """The matching events of one filter, as the parts that count them."""

    parts: tuple
    since: datetime | None
    until: datetime | None
    events: QuerySet  # all the matching events

    @property
    def source(self) -> str:
        return ROLLUP if any(part.source == ROLLUP for part in self.parts) else EVENTS


def count_scope(
    *, org: Organization, filters: Mapping | None = None, rollup: bool = True, coarsest: int = DAY,
    by: tuple = (), each: bool = False,
) -> CountScope:
    """Validate `filters` (the one FilterSet; FilterError when invalid) and split the window
    into what the rollup answers, the coarsest grain (at most `coarsest`) first, and the
    events at the window's partial minutes. All events when the rollup cannot answer the
    filters, or `rollup` is false.

    `by` names the rollup columns the answer groups by (besides the decision), together, or
    with `each` one at a time (facets). The marginals answer when that and the filters come
    to one dimension at most; with `each`, when no dimension is filtered."""
    filterset = filterset_bind(EventFilterSet, data=filters, queryset=AuditEvent.objects.filter(org=org))
    events, data = filterset.qs.order_by(), filterset.form.cleaned_data
    since, until = data.get("since"), data.get("until")
    held = {term.name for term in ROLLUP_TERMS} | {"since", "until"}
    if not rollup or any(value not in v.UNUSED_VALUES and name not in held for name, value in data.items()):
        return CountScope(parts=(_Part(EVENTS, events, "timestamp"),), since=since, until=until, events=events)
    filtered = {term.field: data[term.name] for term in ROLLUP_TERMS if data.get(term.name)}
    decisions = filtered.pop("decision", None)
    combinations = EventRollup.objects.filter(
        org=org, **{f"{column}__in": values for column, values in filtered.items()}
    )
    marginals, wanted = None, set()
    dimensions = set(filtered) | ({column for column in by if column != "decision"} if not each else set())
    if len(dimensions) <= 1 and not (each and filtered):
        wanted = {_marginal_dimension(column) for column in by} if each else {next(iter(dimensions), "")}
        marginals = EventMarginal.objects.filter(org=org, dimension__in=wanted)
        if filtered:
            (values,) = filtered.values()
            marginals = marginals.filter(value__in=values)
    if decisions:
        combinations = combinations.filter(decision__in=decisions)
        marginals = marginals.filter(decision__in=decisions) if marginals is not None else None

    def rows_at(grain: int) -> QuerySet:
        if marginals is not None and wanted <= set(marginal_dimensions(grain)):
            return marginals.filter(grain=grain).order_by()
        return combinations.filter(grain=grain).order_by()

    # The window as [low, high): `until` is inclusive, and times are kept to the microsecond.
    high = until + timedelta(microseconds=1) if until else None
    grains = tuple(grain for grain in GRAINS if grain <= coarsest)
    parts = tuple(_split(rows_at, events, since, high, grains))
    return CountScope(parts=parts, since=since, until=until, events=events)


def _marginal_dimension(column: str) -> str:
    """The marginal that counts by `column`: the decision is in every row of the all-events one."""
    dimension = "" if column == "decision" else column
    assert dimension in MARGINAL_DIMENSIONS, column
    return dimension


def _split(rows_at, events, low, high, grains):
    """The parts that count [low, high): whole periods of the first grain from the rollup
    (`rows_at(grain)`), the rest (at the ends) by the finer grains, and the partial minutes
    from the events."""
    if not grains:
        if low is not None:
            events = events.filter(timestamp__gte=low)
        if high is not None:
            events = events.filter(timestamp__lt=high)
        return [_Part(EVENTS, events, "timestamp")]
    grain, finer = grains[0], grains[1:]
    first = period_ceil(low, grain) if low is not None else None
    last = period_floor(high, grain) if high is not None else None
    if first is not None and last is not None and first >= last:  # no whole period inside
        return _split(rows_at, events, low, high, finer)
    whole = rows_at(grain)
    if first is not None:
        whole = whole.filter(start__gte=first)
    if last is not None:
        whole = whole.filter(start__lt=last)
    parts = [_Part(ROLLUP, whole, "start", grain)]
    if low is not None and first != low:
        parts += _split(rows_at, events, low, first, finer)
    if high is not None and last != high:
        parts += _split(rows_at, events, last, high, finer)
    return parts


def _counted(part: _Part, **extra):
    """Aggregates of a part: the number of events, and of denies and alerts among them."""
    if part.source == ROLLUP:
        n = lambda **kw: Sum("count", **kw)  # noqa: E731
    else:
        n = lambda **kw: Count("pk", **kw)  # noqa: E731
    return {
        "n": n(),
        **{decision: n(filter=Q(decision=decision)) for decision in DECISIONS},
        **extra,
    }


# --- histograms ----------------------------------------------------------------------


@dataclass
class Histogram:
    interval: str
    total: int
    buckets: list[dict]  # {"start": datetime, "allow": n, "deny": n, "alert": n}, oldest first
    source: str


def _bucket_sql(part: _Part, seconds: int) -> RawSQL:
    """The bucket number of a row: whole `seconds` since the epoch (UTC)."""
    table = part.rows.model._meta.db_table
    column = f'"{table}"."{part.time_column}"'
    if connections[part.rows.db].vendor == "postgresql":
        return RawSQL(f"floor(extract(epoch from {column}) / %s)::bigint", [seconds])
    return RawSQL(f"CAST(strftime('%%s', {column}) AS INTEGER) / %s", [seconds])


def interval_choose(*, since: datetime, until: datetime) -> str:
    """The interval that draws `since`..`until` in about AUTO_BUCKETS buckets."""
    span = max((until - since).total_seconds(), 60)
    return min(INTERVALS, key=lambda name: abs(log(span / INTERVALS[name] / AUTO_BUCKETS)))


def event_histogram(*, org: Organization, filters: Mapping | None = None, interval: str | None = None) -> Histogram:
    """Matching events per interval and decision, every bucket of the window (UTC-aligned).

    Without `since` the window starts at the oldest match; without `until` it ends now
    (or at the newest match, if later). Without `interval`, one is chosen for about 60
    buckets. Raises ParameterError for an unknown interval or one that would need more
    than LENS_HISTOGRAM_MAX_BUCKETS buckets.
    """
    if interval is not None and interval not in INTERVALS:
        raise v.ParameterError.one("interval", f"must be one of {', '.join(INTERVALS)}")
    scope = count_scope(org=org, filters=filters, coarsest=_grain_of(interval))
    now = timezone.now()
    start, end = scope.since, scope.until or now
    if start is None or scope.until is None:  # the window reaches as far as the matches do
        oldest, newest = _extent(count_scope(org=org, filters=filters, coarsest=HOUR))
        if oldest is None and start is None:
            return Histogram(interval=interval or "1h", total=0, buckets=[], source=scope.source)
        start = start or oldest
        if scope.until is None and newest is not None:
            end = max(end, newest)
    if interval is None:
        interval = interval_choose(since=start, until=end)
        scope = count_scope(org=org, filters=filters, coarsest=_grain_of(interval))
    seconds = INTERVALS[interval]
    first, last = int(start.timestamp()) // seconds, int(end.timestamp()) // seconds
    limit = settings.LENS_HISTOGRAM_MAX_BUCKETS
    if last - first + 1 > limit:
        raise v.ParameterError.one(
            "interval", f"{interval} would draw {last - first + 1} buckets (at most {limit}): choose a longer interval or a shorter window"
        )
    buckets = {index: dict.fromkeys(DECISIONS, 0) for index in range(first, last + 1)}
    for part in scope.parts:
        rows = part.rows.annotate(bucket=_bucket_sql(part, seconds)).values("bucket").annotate(**_counted(part))
        for row in rows:
            bucket = buckets.get(row["bucket"])
            if bucket is not None:
                for decision in DECISIONS:
                    bucket[decision] += row[decision] or 0
    listed = [
        {"start": datetime.fromtimestamp(index * seconds, UTC), **counts} for index, counts in buckets.items()
    ]
    total = sum(sum(bucket[decision] for decision in DECISIONS) for bucket in listed)
    return Histogram(interval=interval, total=total, buckets=listed, source=scope.source)


def _grain_of(interval: str | None) -> int:
    """The coarsest rollup grain whose periods fall whole into the interval's buckets."""
    if interval is None:
        return MINUTE
    return max(grain for grain in GRAINS if INTERVALS[interval] % grain == 0)


def _extent(scope: CountScope) -> tuple[datetime | None, datetime | None]:
    """The oldest and newest matching times: the first and last periods that hold matches,
    from the rollup, then the events of those two periods only."""
    oldest = newest = None  # (moment, the seconds it stands for)
    for part in scope.parts:
        found = part.rows.aggregate(oldest=Min(part.time_column), newest=Max(part.time_column))
        if found["oldest"] is not None:
            oldest = min(oldest or (found["oldest"], part.grain), (found["oldest"], part.grain))
            newest = max(newest or (found["newest"], part.grain), (found["newest"], part.grain))
    if oldest is None:
        return None, None

    def within(period: tuple, edge) -> datetime:
        moment, grain = period
        if not grain:
            return moment
        inside = scope.events.filter(timestamp__gte=moment, timestamp__lt=moment + timedelta(seconds=grain))
        return inside.aggregate(edge=edge("timestamp"))["edge"]

    return within(oldest, Min), within(newest, Max)


# --- totals and top-N ----------------------------------------------------------------


@dataclass
class Totals:
    total: int = 0
    decisions: dict = field(default_factory=lambda: dict.fromkeys(DECISIONS, 0))
    source: str = ROLLUP


def event_totals(*, org: Organization, filters: Mapping | None = None) -> Totals:
    """How many events match, and how many of each decision."""
    scope = count_scope(org=org, filters=filters)
    totals = Totals(source=scope.source)
    for part in scope.parts:
        row = part.rows.aggregate(**_counted(part))
        totals.total += row["n"] or 0
        for decision in DECISIONS:
            totals.decisions[decision] += row[decision] or 0
    return totals


@dataclass
class TopValue:
    value: object
    count: int = 0
    deny: int = 0
    alert: int = 0
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_max: float | None = None

    @property
    def duration_avg(self) -> float | None:
        return self.duration_sum / self.duration_count if self.duration_count else None


@dataclass
class TopValues:
    by: str
    total: int
    results: list[TopValue]
    source: str


class _SqliteMetadataText(Expression):
    """SQLite: `metadata[key]` as the filter writes it (true/false, numbers as text), read
    through json_each, whose keys need no path quoting (see audit/explore/metadata.py)."""

    output_field = TextField()

    def __init__(self, key):
        super().__init__()
        self.source, self.key = F("metadata"), key

    def get_source_expressions(self):
        return [self.source]

    def set_source_expressions(self, exprs):
        (self.source,) = exprs

    def as_sql(self, compiler, connection):
        column, params = compiler.compile(self.source)
        sql = (
            "(SELECT CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.atom AS TEXT) END "
            f"FROM json_each({column}) AS j WHERE j.key = %s)"
        )
        return sql, (*params, self.key)


def top_by_check(by: str) -> str:
    """`by` as given, or ParameterError naming what it may be (a metadata key as the filters take it)."""
    if by in TOP_BY:
        return by
    if by.startswith(v.METADATA_PREFIX):
        problem = metadata_key_error(by[len(v.METADATA_PREFIX) :])
        if problem is None:
            return by
        raise v.ParameterError.one("by", problem)
    raise v.ParameterError.one("by", f"must be one of {', '.join(TOP_BY)} or metadata.<key>")


def _group_value(part: _Part, by: str):
    if part.marginal:
        return F("decision" if by == "decision" else "value")
    if part.source == ROLLUP:
        return F(_ROLLUP_COLUMN.get(by, by))
    if by == "rule":
        return KeyTextTransform("id", "rule")
    if by.startswith(v.METADATA_PREFIX):
        key = by[len(v.METADATA_PREFIX) :]
        if connections[part.rows.db].vendor == "postgresql":
            return KeyTextTransform(key, "metadata")
        return _SqliteMetadataText(key)
    return F(by)


def _durations(part: _Part) -> dict:
    if part.source == ROLLUP:
        return {"dcount": Sum("duration_count"), "dsum": Sum("duration_sum"), "dmax": Max("duration_max")}
    return {"dcount": Count("duration_ms"), "dsum": Sum("duration_ms"), "dmax": Max("duration_ms")}


TOP_ORDERS = ("count", "deny", "alert", "duration")


def event_top(
    *, org: Organization, by: str, filters: Mapping | None = None, limit: int = 10, order: str = "count"
) -> TopValues:
    """The values of `by` among the matching events, largest count first (or most denies,
    alerts, or the slowest on average with `order`), exact. A null value (anonymous
    actor, no tool, no rule, metadata without the key) is one value of its own."""
    by = top_by_check(by)
    if order not in TOP_ORDERS:
        raise v.ParameterError.one("order", f"must be one of {', '.join(TOP_ORDERS)}")
    # The rollup has no metadata: a metadata key is counted over the events.
    is_metadata = by.startswith(v.METADATA_PREFIX)
    columns = () if is_metadata else (_ROLLUP_COLUMN.get(by, by),)
    scope = count_scope(org=org, filters=filters, rollup=not is_metadata, by=columns)
    values: dict = {}
    total = 0
    for part in scope.parts:
        grouped = part.rows.annotate(top_value=_group_value(part, by)).values("top_value")
        for row in grouped.annotate(**_counted(part, **_durations(part))):
            top = values.setdefault(row["top_value"], TopValue(value=row["top_value"]))
            top.count += row["n"] or 0
            top.deny += row["deny"] or 0
            top.alert += row["alert"] or 0
            top.duration_count += row["dcount"] or 0
            top.duration_sum += row["dsum"] or 0.0
            if row["dmax"] is not None:
                top.duration_max = max(top.duration_max or 0.0, row["dmax"])
            total += row["n"] or 0
    rank = {
        "count": lambda top: -top.count,
        "deny": lambda top: -top.deny,
        "alert": lambda top: -top.alert,
        "duration": lambda top: -(top.duration_avg or -1),
    }[order]
    ranked = sorted(values.values(), key=lambda top: (rank(top), top.value is None, str(top.value or "")))
    if order != "count":
        ranked = [top for top in ranked if (top.duration_count if order == "duration" else getattr(top, order))]
    return TopValues(by=by, total=total, results=ranked[:limit], source=scope.source)



def event_breakdown(*, org: Organization, columns: tuple, filters: Mapping | None = None) -> dict[str, Counter]:
    """Matching events counted by each of `columns` (rollup dimensions) at once: one GROUP BY
    over every column per part, folded here, instead of a query per column."""
    scope = count_scope(org=org, filters=filters, by=columns, each=True)
    counters = {column: Counter() for column in columns}
    for part in scope.parts:
        if part.marginal:
            for row in part.rows.values("dimension", "value", "decision").annotate(n=Sum("count")):
                column, value = (row["dimension"], row["value"]) if row["dimension"] else ("decision", row["decision"])
                counters[column][value] += row["n"] or 0
            continue
        for row in part.rows.values(*columns).annotate(n=_counted(part)["n"]):
            for column in columns:
                counters[column][row[column]] += row["n"] or 0
    return counters
