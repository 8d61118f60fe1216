"""Replaying a draft over stored calls: exact on a known corpus, the same answer from the
database and from the streaming evaluator over generated policies and events, one
organization only; and the rules the trail recorded."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.policy.compile import NotCompilable, policy_compiles
from audit.policy.evaluate import Evaluator
from audit.policy.model import policy_parse
from audit.policy.selectors import DATABASE, PYTHON, TRANSITIONS, policy_simulate, rule_activity, trail_policy
from tests.factories import BASE_TIME, store_events, wire_event

POLICY = {
    "name": "github-guardrails",
    "default": "allow",
    "rules": [
        {"id": "r-admin", "tool": "delete_*", "action": "allow", "conditions": {"actor": "admin@*"}},
        {"id": "r-del", "tool": "delete_*", "action": "deny"},
        {"id": "r-merge", "tool": "merge_*", "action": "alert", "conditions": {"metadata.env": "production"}},
        {"id": "r-share", "tool": "share_file", "action": "deny", "conditions": {"arguments.visibility": "public"}},
    ],
}


def _at(seconds):
    return (BASE_TIME + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def corpus(org, other_org):
    store_events(
        org,
        wire_event(id="a1", timestamp=_at(1), tool="delete_repo", decision="allow"),
        wire_event(id="a2", timestamp=_at(2), tool="delete_repo", actor="admin@company.com", decision="deny"),
        wire_event(id="a3", timestamp=_at(3), tool="merge_pull_request", actor="bob@company.com",
                   metadata={"env": "production"}, decision="allow"),
        wire_event(id="a4", timestamp=_at(4), tool="merge_pull_request", actor="bob@company.com",
                   metadata={"env": "staging"}, decision="allow"),
        wire_event(id="a5", timestamp=_at(5), tool="share_file", arguments={"visibility": "public"}, decision="deny"),
        wire_event(id="a6", timestamp=_at(6), tool="share_file", arguments={"visibility": "team"}, decision="deny"),
        wire_event(id="a7", timestamp=_at(7), tool="list_issues", actor=None, decision="alert"),
        wire_event(id="a8", timestamp=_at(8), method="initialize", tool=None, arguments=None, decision="deny"),
        wire_event(id="a9", timestamp=_at(9), method="tools/list", tool=None, arguments=None, decision="deny"),
    )
    store_events(other_org, wire_event(id="b1", timestamp=_at(10), tool="delete_repo", decision="allow"))
    return org


@pytest.mark.parametrize("method", [DATABASE, PYTHON])
def test_the_answer_is_exact_on_a_known_corpus(corpus, method):
    result = policy_simulate(org=corpus, policy=policy_parse(POLICY), filters={}, method=method).as_json()
    assert result["evaluated"] == 7  # the initialize and tools/list events are not calls to evaluate
    assert result["changed"] == 5
    assert result["transitions"] == {
        **dict.fromkeys(TRANSITIONS, 0), "allow->deny": 1, "deny->allow": 2, "allow->alert": 1, "alert->allow": 1,
    }
    assert [(r["id"], r["index"], r["matched"], r["changed"]) for r in result["by_rule"]] == [
        ("r-admin", 0, 1, 1), ("r-del", 1, 1, 1), ("r-merge", 2, 1, 1), ("r-share", 3, 1, 0),
    ]
    assert (result["default_matched"], result["default_changed"]) == (3, 2)
    assert [(s["id"], s["from"], s["to"], s["rule"]) for s in result["samples"]] == [
        ("a7", "alert", "allow", None), ("a6", "deny", "allow", None), ("a3", "allow", "alert", "r-merge"),
        ("a2", "deny", "allow", "r-admin"), ("a1", "allow", "deny", "r-del"),
    ]
    assert result["samples"][0]["timestamp"] == "2026-11-23T09:00:07.000000Z"
    assert result["actors"] == [
        {"actor": "alice@company.com", "changed": 2}, {"actor": "admin@company.com", "changed": 1},
        {"actor": "bob@company.com", "changed": 1}, {"actor": None, "changed": 1},
    ]
    assert result["tools"][0] == {"tool": "delete_repo", "changed": 2}
    assert result["evaluated_in"] == method


def test_the_database_is_used_whenever_the_policy_compiles(corpus, django_assert_num_queries):
    policy = policy_parse(POLICY)
    assert policy_compiles(policy, vendor=connection.vendor)
    # The counts and the samples: two queries (and on PostgreSQL one to set JIT and work_mem).
    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 2):
        assert policy_simulate(org=corpus, policy=policy).evaluated_in == DATABASE


def test_the_query_narrows_the_calls_and_other_organizations_count_for_nothing(corpus, other_org):
    policy = policy_parse(POLICY)
    narrowed = policy_simulate(org=corpus, policy=policy, filters={"q": "delete"})
    assert (narrowed.evaluated, narrowed.changed) == (2, 2)
    assert [s["id"] for s in narrowed.samples] == ["a2", "a1"]
    theirs = policy_simulate(org=other_org, policy=policy)
    assert (theirs.evaluated, theirs.changed, [s["id"] for s in theirs.samples]) == (1, 1, ["b1"])


def test_samples_are_bounded(corpus):
    result = policy_simulate(org=corpus, policy=policy_parse(POLICY), sample_limit=2)
    assert result.changed == 5 and [s["id"] for s in result.samples] == ["a7", "a6"]


def test_objects_and_arrays_are_compared_in_python_on_sqlite_and_in_the_database_on_postgresql(corpus):
    policy = policy_parse({"name": "p", "default": "allow", "rules": [
        {"id": "r", "tool": "*", "action": "deny", "conditions": {"arguments.visibility": ["public"]}},
    ]})
    expected = DATABASE if connection.vendor == "postgresql" else PYTHON
    assert policy_simulate(org=corpus, policy=policy).evaluated_in == expected
    if connection.vendor != "postgresql":
        with pytest.raises(NotCompilable):
            policy_simulate(org=corpus, policy=policy, method=DATABASE)


def test_keys_with_any_characters_are_bound_never_spliced(org):
    key = "x'); DROP TABLE audit_auditevent; --\"\\é"
    store_events(org, wire_event(id="k1", arguments={key: "v"}, metadata={key: 1}, decision="allow"))
    policy = policy_parse({"name": "p", "default": "allow", "rules": [
        {"id": "r", "tool": "*", "action": "deny", "conditions": {f"arguments.{key}": "v", f"metadata.{key}": 1}},
    ]})
    result = policy_simulate(org=org, policy=policy)
    assert (result.evaluated, result.changed) == (1, 1)


# --- the database and the streaming evaluator agree -------------------------------------

TOOLS = ["delete_repo", "Delete_repo", "list_issues", "a%b", "a_b", "axb", "[x]", "?", "a\\b", "star*tool", "é_tool"]
ACTORS = [None, "alice@company.com", "ALICE@company.com", "bob@x.org", "a%b", "é@x", "*"]
SLUGS = ["github-prod", "slack-prod", "abc_staging"]
KEYS = ["env", "n", "beta", "a.b", "é", 'q"k', "back\\slash", "Env"]
SCALARS = ["production", "Production", "", "4711", "true", "100%", "a_b", "x*y", "line\nbreak", 4711, 4711.0, 1, 0, -2.5,
           True, False, 2**53, 2**53 + 1, 10**30, 1e300]
GLOBS = ["*", "prod*", "*tion", "Prod*", "a%*", "a_b", "*_*", "100%", "*\n*", "x*y", "", "*é*", "?", "[x]", "a\\b"]
FIELDS = ["actor", "slug", *(f"metadata.{k}" for k in KEYS), *(f"arguments.{k}" for k in KEYS), "arguments.repo.owner",
          "arguments.a.b"]

scalars = st.sampled_from(SCALARS)
json_values = st.recursive(scalars | st.none(), lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(KEYS + ["owner", "b"]), inner, max_size=3), max_leaves=6)
arguments = st.none() | st.dictionaries(st.sampled_from(KEYS + ["repo", "a"]), json_values | st.fixed_dictionaries(
    {"owner": scalars | st.none()}) | st.fixed_dictionaries({"b": scalars}), max_size=4)
metadata = st.dictionaries(st.sampled_from(KEYS), scalars.filter(lambda v: not (isinstance(v, int) and abs(v) > 2**63)),
                           max_size=4)
calls = st.fixed_dictionaries({
    "tool": st.sampled_from(TOOLS), "actor": st.sampled_from(ACTORS), "slug": st.sampled_from(SLUGS),
    "metadata": metadata, "arguments": arguments, "decision": st.sampled_from(["allow", "deny", "alert"]),
    "method": st.sampled_from(["tools/call"] * 5 + ["initialize"]),
})
exact_scalars = st.sampled_from([v for v in SCALARS if not isinstance(v, (int, float)) or abs(v) <= 2**53])
condition_json = st.recursive(exact_scalars | st.none(), lambda inner: st.lists(inner, max_size=3)
                              | st.dictionaries(st.sampled_from(KEYS + ["owner", "b"]), inner, max_size=3), max_leaves=6)


def _condition_values(field):
    """Values a draft may hold for `field` (valid by construction, so no example is wasted)."""
    globs = st.sampled_from(GLOBS) | st.none()
    if field in ("actor", "slug"):
        return globs
    return globs | exact_scalars | (condition_json if field.startswith("arguments.") else st.nothing())


conditions = st.lists(
    st.sampled_from(FIELDS).flatmap(lambda field: st.tuples(st.just(field), _condition_values(field))), max_size=3,
).map(dict)
rules = st.fixed_dictionaries({
    "tool": st.sampled_from(["*", "delete_*", "*_*", "a%*", "a_b", "[x]", "?", "*i*", "list_issues", "Delete_*", "a\\b", "star*"]),
    "action": st.sampled_from(["allow", "deny", "alert"]),
    "conditions": conditions,
})
policies = st.builds(
    lambda rules, default: {"name": "generated", "default": default,
                            "rules": [{**rule, "id": f"r{i}"} for i, rule in enumerate(rules)]},
    st.lists(rules, max_size=6), st.sampled_from(["allow", "deny", "alert"]),
)


def _wire(call, n):
    event = wire_event(id=f"gen-{n}", timestamp=_at(n), tool=call["tool"] if call["method"] == "tools/call" else None,
                       actor=call["actor"], slug=call["slug"], method=call["method"], metadata=call["metadata"],
                       arguments=call["arguments"], decision=call["decision"])
    return event


def _reference(policy, wire_events):
    """The draft's answer computed from the events as sent, with the evaluator alone."""
    evaluator, flips = Evaluator(policy), []
    for event in sorted(wire_events, key=lambda e: e["timestamp"], reverse=True):
        if event["method"] != "tools/call":
            continue
        call = {name: event.get(name) for name in ("tool", "actor", "slug", "arguments")} | {"metadata": event.get("metadata") or {}}
        to = evaluator.decide(call)
        if to != event["decision"]:
            flips.append((event["id"], event["decision"], to))
    return flips


def _agree(org, policy, wire_events):
    python = policy_simulate(org=org, policy=policy, method=PYTHON, sample_limit=1000)
    assert [(s["id"], s["from"], s["to"]) for s in python.samples] == _reference(policy, wire_events)
    if policy_compiles(policy, vendor=connection.vendor):
        database = policy_simulate(org=org, policy=policy, method=DATABASE, sample_limit=1000)
        python.evaluated_in = database.evaluated_in
        assert database == python


@pytest.fixture
def generated_corpus(org):
    """Every value kind under every key, for every tool: what the generated policies compare against."""
    wire_events = []
    for n, (tool, value) in enumerate(
        ((tool, value) for tool in TOOLS for value in [*SCALARS, None, {"owner": "acme"}, ["public"], {"b": [1, 2.0]}]), start=1
    ):
        flat = value is not None and not isinstance(value, (dict, list)) and not (isinstance(value, int) and abs(value) > 2**63)
        wire_events.append(_wire({
            "tool": tool, "actor": ACTORS[n % len(ACTORS)], "slug": SLUGS[n % len(SLUGS)],
            "metadata": {key: value for key in KEYS[n % 3:]} if flat else {},
            "arguments": None if n % 7 == 0 else {**{key: value for key in KEYS[n % 2:]}, "repo": {"owner": value}, "a": {"b": value}},
            "decision": ["allow", "deny", "alert"][n % 3], "method": "initialize" if n % 11 == 0 else "tools/call",
        }, n))
    store_events(org, *wire_events)
    return wire_events


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=policies)
def test_generated_policies_get_the_same_answer_from_the_database_and_from_python(org, generated_corpus, data):
    _agree(org, policy_parse(data), generated_corpus)


class _Rollback(Exception):
    pass


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=policies, generated=st.lists(calls, min_size=1, max_size=12))
def test_generated_policies_and_events_agree_too(org, data, generated):
    policy = policy_parse(data)
    try:
        with transaction.atomic():
            wire_events = [_wire(call, n) for n, call in enumerate(generated, start=1)]
            store_events(org, *wire_events)
            _agree(org, policy, wire_events)
            raise _Rollback
    except _Rollback:
        pass


# --- the rules the trail recorded ---------------------------------------------------------


def _rule(rule_id, index, policy="github-guardrails", tool="*", action="deny", conditions=None):
    return {"id": rule_id, "policy": policy, "index": index, "tool": tool, "action": action, "conditions": conditions or {}}


@pytest.fixture
def trail(org, other_org):
    store_events(
        org,
        wire_event(id="t1", timestamp=_at(-3600), rule=_rule("r-old", 5), decision="deny"),
        wire_event(id="t2", timestamp=_at(-3500), rule=_rule("r-del", 2, tool="delete_*"), decision="deny"),
        wire_event(id="t3", timestamp=_at(10), rule=_rule("r-del", 2, tool="delete_*",
                                                          conditions={"user": {"not_in": ["admin"]}}), decision="deny"),
        wire_event(id="t4", timestamp=_at(20), rule=_rule("r-merge", 1, tool="merge_*", action="alert",
                                                          conditions={"metadata.env": "production"}), decision="alert"),
        wire_event(id="t5", timestamp=_at(30), rule=_rule("r-share", 0, policy="drive-dlp"), slug="gdrive-corp", decision="deny"),
        wire_event(id="t6", timestamp=_at(40), rule=None, decision="allow"),
        wire_event(id="t7", timestamp=_at(50), rule=None, decision="allow"),
        wire_event(id="t8", timestamp=_at(60), rule=None, decision="deny"),
    )
    store_events(other_org, wire_event(id="x1", timestamp=_at(30), rule=_rule("r-secret", 0, policy="globex")))
    return org


def test_rule_activity_counts_the_window_and_finds_rules_that_stopped_firing(trail):
    activity = rule_activity(org=trail, filters={"since": _at(0), "until": _at(100)})
    summary = [(r.policy, r.id, r.index, r.fired, r.fired_before, r.stopped) for r in activity]
    assert summary == [
        ("drive-dlp", "r-share", 0, 1, 0, False),
        ("github-guardrails", "r-merge", 1, 1, 0, False),
        ("github-guardrails", "r-del", 2, 1, 1, False),
        ("github-guardrails", "r-old", 5, 0, 1, True),
    ]
    assert activity[2].tool == "delete_*" and activity[2].last_fired.isoformat().startswith("2026-11-23T09:00:10")
    assert all(rule.fired_before == 0 for rule in rule_activity(org=trail, filters={}))  # no start: nothing is before


def test_trail_policy_lists_the_latest_version_of_each_rule_in_index_order(trail):
    recorded = trail_policy(org=trail, filters={"since": _at(0)}, name="github-guardrails")
    assert [(r["id"], r["index"]) for r in recorded.rules] == [("r-merge", 1), ("r-del", 2)]
    assert recorded.rules[1]["conditions"] == {"user": {"not_in": ["admin"]}}
    assert recorded.slugs == ["github-prod"]
    assert recorded.default == "allow"  # calls there that no rule matched: 2 allowed, 1 denied
    assert trail_policy(org=trail, filters={}, name="globex").rules == []
