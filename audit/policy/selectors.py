"""Replay a draft policy over stored calls (SPEC §14), and read the rules the trail recorded.

`policy_simulate` counts, exactly, over every stored `tools/call` that matches the
filters (a §7 query in `q`, through `audit.explore.selectors.event_list`). In the
database when the policy compiles (audit/policy/compile.py): one grouped scan counts
the calls by (recorded decision, draft rule, actor, tool), and a second query reads
the newest flips as samples. Otherwise it streams the calls through the Python
evaluator in constant memory. Both paths reduce the same groups through `_summary`,
so they cannot disagree on how counts are added up; the tests compare them on
generated policies and events.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db import connections
from django.db.models import Case, Count, F, Max, Q, Value, When
from django.db.models.fields.json import KT

from audit.events.fields import DECISIONS
from audit.events.models import AuditEvent
from audit.events.reading import iter_rows, read_snapshot
from audit.events.wire import format_timestamp
from audit.explore import selectors as explore
from audit.explore.filters import EventFilterSet, filterset_bind
from audit.policy.compile import RuleIndex, policy_compiles
from audit.policy.evaluate import DEFAULT, Evaluator
from audit.policy.model import Policy

TOOLS_CALL = "tools/call"
SAMPLE_LIMIT = 20
TOP_LIMIT = 10
TRANSITIONS = tuple(f"{a}->{b}" for a in DECISIONS for b in DECISIONS if a != b)
DATABASE, PYTHON = "database", "python"
# Measured at 1M calls with a 20-rule draft on PostgreSQL 15 (bench/policy.py): JIT-compiling
# the CASE cost more than it saved (3.5 s against 2.6 s), and with the default 4 MB the
# planner sorted the groups on disk instead of hashing them in parallel (6.8 s against 2.9 s).
_POSTGRES_SETTINGS = "SELECT set_config('jit', 'off', true), set_config('work_mem', '64MB', true)"  # for this transaction


@dataclass
class RuleCount:
    index: int
    id: str
    tool: str
    action: str
    matched: int = 0
    changed: int = 0


@dataclass
class Simulation:
    evaluated: int
    changed: int
    transitions: dict[str, int]
    by_rule: list[RuleCount]
    default_matched: int
    default_changed: int
    samples: list[dict]
    actors: list[tuple[str | None, int]]  # most flipped first: (actor, flips)
    tools: list[tuple[str, int]]
    evaluated_in: str
    flipped_from: list[str] = field(default_factory=list)  # recorded decisions that flip

    def as_json(self) -> dict:
        return {
            "evaluated": self.evaluated,
            "changed": self.changed,
            "transitions": self.transitions,
            "by_rule": [
                {"id": r.id, "index": r.index, "tool": r.tool, "action": r.action, "matched": r.matched, "changed": r.changed}
                for r in self.by_rule
            ],
            "default_matched": self.default_matched,
            "default_changed": self.default_changed,
            "samples": [{**sample, "timestamp": format_timestamp(sample["timestamp"])} for sample in self.samples],
            "actors": [{"actor": actor, "changed": n} for actor, n in self.actors],
            "tools": [{"tool": tool, "changed": n} for tool, n in self.tools],
            "evaluated_in": self.evaluated_in,
        }


def policy_simulate(
    *, org, policy: Policy, filters: Mapping | None = None, sample_limit: int = SAMPLE_LIMIT, method: str | None = None
) -> Simulation:
    """The draft's decisions over the organization's stored calls matching `filters`.

    `method` forces DATABASE or PYTHON (the tests compare them); by default the
    database evaluates whenever the policy compiles for it.
    """
    events = explore.event_list(org=org, filters=filters).filter(method=TOOLS_CALL)
    vendor = connections[events.db].vendor
    if method is None:
        method = DATABASE if policy_compiles(policy, vendor=vendor) else PYTHON
    if method == DATABASE:
        with read_snapshot(events.db):  # counts and samples from one snapshot
            if vendor == "postgresql":
                with connections[events.db].cursor() as cursor:
                    cursor.execute(_POSTGRES_SETTINGS)
            samples = _database_samples(events, policy, sample_limit)
            return _summary(policy, _database_groups(events, policy), samples, method)
    groups, samples = _python_groups(events, policy, sample_limit)
    return _summary(policy, groups, samples, method)


def _database_groups(events, policy) -> list[tuple]:
    """(recorded decision, draft rule index, actor, tool, count) for every group of calls.

    Fetched whole, not through a server-side cursor: PostgreSQL plans no parallel scan
    for a cursor (20 s against 3 s at 1M calls). A row per distinct actor and tool."""
    with_rule = events.order_by().annotate(rule_index=RuleIndex(policy))
    return list(with_rule.values_list("decision", "rule_index", "actor", "tool").annotate(n=Count("pk")))


def _database_samples(events, policy, limit) -> list[tuple]:
    to = Case(*(When(rule_index=rule.index, then=Value(rule.action)) for rule in policy.rules), default=Value(policy.default))
    flips = events.annotate(rule_index=RuleIndex(policy)).annotate(to_decision=to).filter(~Q(decision=F("to_decision")))
    return list(flips.values_list("event_id", "timestamp", "actor", "tool", "decision", "rule_index")[:limit])


def _python_groups(events, policy, limit) -> tuple[list[tuple], list[tuple]]:
    evaluator = Evaluator(policy)
    groups, samples = Counter(), []
    columns = ("event_id", "timestamp", "decision", "tool", "actor", "slug", "metadata", "arguments")
    for event_id, timestamp, decision, tool, actor, slug, metadata, arguments in iter_rows(events.values_list(*columns)):
        index = evaluator.rule_index({"tool": tool, "actor": actor, "slug": slug, "metadata": metadata, "arguments": arguments})
        groups[(decision, index, actor, tool)] += 1
        if len(samples) < limit and policy.action_of(index) != decision:
            samples.append((event_id, timestamp, actor, tool, decision, index))
    return [(*key, count) for key, count in groups.items()], samples


def _summary(policy: Policy, groups: Iterable[tuple], samples: list[tuple], method: str) -> Simulation:
    rules = [RuleCount(index=r.index, id=r.id, tool=r.tool, action=r.action) for r in policy.rules]
    transitions = dict.fromkeys(TRANSITIONS, 0)
    evaluated = changed = default_matched = default_changed = 0
    actors, tools, flipped_from = Counter(), Counter(), set()
    for decision, index, actor, tool, count in groups:
        to = policy.action_of(index)
        evaluated += count
        if index == DEFAULT:
            default_matched += count
        else:
            rules[index].matched += count
        if to == decision:
            continue
        changed += count
        transitions[f"{decision}->{to}"] += count
        flipped_from.add(decision)
        actors[actor] += count
        tools[tool] += count
        if index == DEFAULT:
            default_changed += count
        else:
            rules[index].changed += count
    return Simulation(
        evaluated=evaluated,
        changed=changed,
        transitions=transitions,
        by_rule=rules,
        default_matched=default_matched,
        default_changed=default_changed,
        samples=[
            {"id": event_id, "from": decision, "to": policy.action_of(index),
             "rule": None if index == DEFAULT else policy.rules[index].id,
             "timestamp": timestamp, "actor": actor, "tool": tool}
            for event_id, timestamp, actor, tool, decision, index in samples
        ],
        actors=_top(actors),
        tools=_top(tools),
        evaluated_in=method,
        flipped_from=[decision for decision in DECISIONS if decision in flipped_from],
    )


def _top(counter: Counter) -> list[tuple]:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0] is None, item[0] or ""))
    return ranked[:TOP_LIMIT]


# --- the rules recorded in the trail ---------------------------------------------------


@dataclass
class RecordedRule:
    """A rule as events recorded it (the latest version seen), and how often it fired."""

    policy: str | None
    id: str | None
    index: int | None
    tool: str | None
    action: str | None
    fired: int = 0  # inside the window
    fired_before: int = 0  # before the window's start
    last_fired: object = None

    @property
    def stopped(self) -> bool:
        """It fired before the window and not in it."""
        return self.fired == 0 and self.fired_before > 0


def _window(filters: Mapping | None) -> tuple[dict, object]:
    """The filters without their lower time bound, and that bound as a time (None: no bound)."""
    filters = dict(filters or {})
    bound = filterset_bind(EventFilterSet, data=filters, queryset=AuditEvent.objects.none())
    since = bound.form.cleaned_data.get("since")
    filters.pop("since", None)
    return filters, since


def _as_index(value) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.lstrip("-").isdigit() else None


def rule_activity(*, org, filters: Mapping | None = None) -> list[RecordedRule]:
    """Every rule recorded in events matching `filters` (a plain dict): how often it fired in
    their time window, and before the window's start (`since`); shown as its latest
    recorded version, in policy, then index order. One grouped scan up to the window's end."""
    filters, since = _window(filters)
    in_window = Value(True) if since is None else Case(When(timestamp__gte=since, then=Value(True)), default=Value(False))
    rows = (
        explore.event_list(org=org, filters=filters)
        .order_by()
        .filter(rule__isnull=False)
        .values(
            rule_policy=KT("rule__policy"), rule_id=KT("rule__id"), rule_index=KT("rule__index"),
            rule_tool=KT("rule__tool"), rule_action=KT("rule__action"), in_window=in_window,
        )
        .annotate(n=Count("pk"), last=Max("timestamp"))
    )
    rules: dict[tuple, RecordedRule] = {}
    for row in sorted(rows, key=lambda row: row["last"]):  # later versions overwrite what is shown
        key = (row["rule_policy"], row["rule_id"])
        rule = rules.setdefault(key, RecordedRule(policy=key[0], id=key[1], index=None, tool=None, action=None))
        rule.index, rule.tool, rule.action = _as_index(row["rule_index"]), row["rule_tool"], row["rule_action"]
        rule.last_fired = row["last"]
        if row["in_window"]:
            rule.fired += row["n"]
        else:
            rule.fired_before += row["n"]
    return sorted(
        rules.values(),
        key=lambda r: (r.policy is None, str(r.policy or ""), r.index is None, r.index or 0, str(r.id or "")),
    )


@dataclass
class TrailPolicy:
    """What the trail says of one policy: its rules as recorded, in index order, and the
    decision calls got on its connections when no rule matched (its likely default)."""

    name: str
    rules: list[dict]
    slugs: list[str]
    default: str | None


def trail_policy(*, org, filters: Mapping | None = None, name: str) -> TrailPolicy:
    """The distinct rules of policy `name` recorded in events matching `filters` (the
    latest version of each id), and the most common decision of rule-less calls on the
    connections where it fired."""
    events = explore.event_list(org=org, filters=filters).order_by()
    recorded = events.filter(rule__policy=name).values("rule").annotate(last=Max("timestamp")).order_by("last")
    latest = {}
    for row in recorded:
        rule = row["rule"]
        if isinstance(rule, dict):
            latest[repr(rule.get("id"))] = rule
    rules = sorted(latest.values(), key=lambda rule: (_as_index(rule.get("index")) is None, _as_index(rule.get("index")) or 0))
    slugs = sorted(events.filter(rule__policy=name).values_list("slug", flat=True).distinct())
    unmatched = (
        events.filter(method=TOOLS_CALL, rule__isnull=True, slug__in=slugs)
        .values("decision").annotate(n=Count("pk")).order_by("-n", "decision")
    )
    top = unmatched.first()
    return TrailPolicy(name=name, rules=rules, slugs=slugs, default=top["decision"] if top else None)
