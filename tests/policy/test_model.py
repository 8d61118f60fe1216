"""The draft policy: parsed from JSON or YAML into an immutable structure; anything wrong
is named by rule (index and id) and field."""

import dataclasses

import pytest

from audit.policy.model import MAX_POLICY_BYTES, PolicyError, policy_load, policy_parse


def _policy(*rules, default="allow", name="p"):
    return {"name": name, "default": default, "rules": list(rules)}


def _rule(rule_id="r-1", tool="*", action="deny", **conditions):
    rule = {"id": rule_id, "tool": tool, "action": action}
    if conditions:
        rule["conditions"] = conditions
    return rule


def _problems(data):
    with pytest.raises(PolicyError) as caught:
        policy_parse(data)
    return [(p.rule, p.rule_id, p.field, p.message) for p in caught.value.problems]


def test_a_valid_policy_becomes_an_immutable_structure():
    policy = policy_parse(_policy(
        _rule("r-del", "delete_*", "deny", **{"metadata.env": "production", "arguments.repo.owner": "acme", "actor": None}),
        _rule("r-ok", "list_*", "allow"),
        default="alert",
    ))
    assert policy.default == "alert" and [r.id for r in policy.rules] == ["r-del", "r-ok"]
    first = policy.rules[0]
    assert (first.index, first.tool, first.action) == (0, "delete_*", "deny")
    assert [(c.source, c.path, c.value) for c in first.conditions] == [
        ("metadata", ("env",), "production"), ("arguments", ("repo", "owner"), "acme"), ("actor", (), None),
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.tool = "*"
    assert policy.action_of(0) == "deny" and policy.action_of(-1) == "alert"


def test_metadata_keys_keep_their_dots_and_arguments_paths_split_on_them():
    policy = policy_parse(_policy(_rule(**{"metadata.a.b": "x", "arguments.a.b": "x"})))
    assert [c.path for c in policy.rules[0].conditions] == [("a.b",), ("a", "b")]


@pytest.mark.parametrize(
    "rule, field, words",
    [
        (_rule(user="alice"), "conditions.user", "not a condition field"),
        (_rule(**{"tool": "x"}) | {"conditions": {"tool": "x"}}, "conditions.tool", "not a condition field"),
        (_rule(**{"metadata.": "x"}), "conditions.metadata.", "not a condition field"),
        (_rule(**{"actor.name": "x"}), "conditions.actor.name", "not a condition field"),
        (_rule(**{"arguments.a..b": 1}), "conditions.arguments.a..b", "no empty key"),
        (_rule(actor=5), "conditions.actor", "a string (a glob) or null"),
        (_rule(slug=["a"]), "conditions.slug", "a string (a glob) or null"),
        (_rule(**{"metadata.env": {"in": ["a"]}}), "conditions.metadata.env", "an object or array never matches"),
        (_rule(**{"arguments.n": 2**53 + 1}), "conditions.arguments.n", "within ±2^53"),
        (_rule(**{"arguments.s": "a" * 1001}), "conditions.arguments.s", "at most 1000"),
        (_rule(**{"arguments.s": "*" * 21}), "conditions.arguments.s", "at most 20 wildcards"),
        (_rule(action="block"), "action", "allow, deny, alert"),
        (_rule(tool=""), "tool", "non-empty string"),
        (_rule(tool=None), "tool", "non-empty string"),
        (_rule(rule_id=""), "id", "non-empty string"),
        (_rule() | {"when": "always"}, "when", "not a field here"),
        (_rule() | {"conditions": ["actor"]}, "conditions", "must be an object"),
    ],
)
def test_a_bad_rule_is_named_by_index_id_and_field(rule, field, words):
    problems = _problems(_policy(_rule("r-ok"), rule))
    assert len(problems) == 1, problems
    index, rule_id, got_field, message = problems[0]
    assert (index, got_field) == (1, field)
    assert rule_id == (rule.get("id") or None)
    assert words in message


def test_every_problem_is_reported_at_once():
    problems = _problems({"name": "", "default": "block", "rules": [_rule("a", action="x"), _rule("a"), "nope"], "extra": 1})
    assert [(p[0], p[1], p[2]) for p in problems] == [
        (None, None, "extra"), (None, None, "name"), (None, None, "default"),
        (0, "a", "action"), (1, "a", "id"), (2, None, "rule"),
    ]
    assert "repeats the id of rule" in problems[4][3]


@pytest.mark.parametrize("data", [None, [], "policy", 3])
def test_a_policy_is_an_object(data):
    assert _problems(data)[0][2] == "policy"


def test_json_and_yaml_read_alike():
    as_json = '{"name": "p", "default": "deny", "rules": [{"id": "r", "tool": "get_*", "action": "allow", "conditions": {"metadata.n": 1e3}}]}'
    as_yaml = "name: p\ndefault: deny\nrules:\n  - id: r\n    tool: get_*\n    action: allow\n    conditions:\n      metadata.n: 1000.0\n"
    assert policy_load(as_json) == policy_load(as_yaml)


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "is empty"),
        ("name: [unclosed", "neither JSON nor YAML"),
        ("name: p\ndefault: allow\nrules: [{id: r, tool: '*', action: deny, conditions: {metadata.x: .nan}}]", "must be finite"),
        ("name: p\ndefault: allow\nrules:\n  - {id: r, tool: '*', action: deny, conditions: {arguments.day: 2026-11-23}}\n", "not a JSON value"),
        ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
         "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
         "name: p\ndefault: allow\nrules: [{id: r, tool: '*', action: deny, conditions: {arguments.x: *e}}]\n", "too large"),
        ("x" * (MAX_POLICY_BYTES + 1), "KiB"),
    ],
)
def test_unreadable_or_oversized_drafts_are_problems_not_crashes(text, words):
    with pytest.raises(PolicyError) as caught:
        policy_load(text)
    assert words in str(caught.value)


def test_yaml_reads_unquoted_yes_as_a_boolean_which_is_then_compared_as_one():
    policy = policy_load("name: p\ndefault: allow\nrules:\n  - {id: r, tool: '*', action: deny, conditions: {metadata.beta: yes}}\n")
    assert policy.rules[0].conditions[0].value is True
