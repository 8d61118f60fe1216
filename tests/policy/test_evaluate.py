"""The evaluator's semantics (SPEC §14), case by case; the SQL compilation is held to the
same answers in test_selectors.py."""

import pytest

from audit.policy.evaluate import DEFAULT, Evaluator, glob_matcher, json_key
from audit.policy.model import policy_parse


def _call(tool="create_issue", actor="alice@company.com", slug="github-prod", metadata=None, arguments=None):
    return {"tool": tool, "actor": actor, "slug": slug, "metadata": metadata or {}, "arguments": arguments}


def _index(conditions, call, tool="*"):
    policy = policy_parse({"name": "p", "default": "allow", "rules": [{"id": "r", "tool": tool, "action": "deny", "conditions": conditions}]})
    return Evaluator(policy).rule_index(call)


@pytest.mark.parametrize(
    "pattern, text, matches",
    [
        ("delete_*", "delete_repo", True),
        ("delete_*", "Delete_repo", False),  # case-sensitive, as the gateway matches
        ("delete_*", "delete_", True),
        ("*", "", True),
        ("", "", True),
        ("", "x", False),
        ("a*b*c", "abc", True),
        ("a*b*c", "axxbyyc", True),
        ("a*b*c", "acb", False),
        ("a*a", "a", False),
        ("*_prod", "slack_prod", True),
        ("list_issues", "list_issues", True),
        ("list_issues", "list_issues2", False),
        ("%_?[x]\\", "%_?[x]\\", True),  # only * is special
        ("50%", "500", False),
        ("a?c", "abc", False),
        ("*\n*", "line one\nline two", True),
        ("*", "multi\nline", True),
        ("é*", "eté", False),
        ("é*", "éte", True),
    ],
)
def test_globs(pattern, text, matches):
    assert glob_matcher(pattern)(text) is matches


@pytest.mark.parametrize(
    "conditions, call, decides",
    [
        # actor and slug: globs, null for anonymous
        ({"actor": "alice@*"}, _call(), True),
        ({"actor": "*@company.com"}, _call(actor="bob@company.com"), True),
        ({"actor": "ALICE@*"}, _call(), False),
        ({"actor": "*"}, _call(actor=None), False),  # "*" is any named actor, not anonymous
        ({"actor": None}, _call(actor=None), True),
        ({"actor": None}, _call(), False),
        ({"slug": "*-prod"}, _call(slug="slack-prod"), True),
        ({"slug": None}, _call(), False),
        # metadata: strings glob, other values by equality, typed
        ({"metadata.env": "prod*"}, _call(metadata={"env": "production"}), True),
        ({"metadata.env": "production"}, _call(metadata={"env": "Production"}), False),
        ({"metadata.ticket": 4711}, _call(metadata={"ticket": 4711}), True),
        ({"metadata.ticket": 4711}, _call(metadata={"ticket": 4711.0}), True),  # numbers by value
        ({"metadata.ticket": 4711.0}, _call(metadata={"ticket": 4711}), True),
        ({"metadata.ticket": 4711}, _call(metadata={"ticket": "4711"}), False),  # a string is not a number
        ({"metadata.ticket": "4711"}, _call(metadata={"ticket": 4711}), False),
        ({"metadata.ticket": "47*"}, _call(metadata={"ticket": 4711}), False),  # globs read strings only
        ({"metadata.beta": True}, _call(metadata={"beta": True}), True),
        ({"metadata.beta": True}, _call(metadata={"beta": 1}), False),  # true is not 1
        ({"metadata.beta": 1}, _call(metadata={"beta": True}), False),
        ({"metadata.beta": True}, _call(metadata={"beta": "true"}), False),
        ({"metadata.beta": False}, _call(metadata={"beta": 0}), False),
        ({"metadata.a.b": "x"}, _call(metadata={"a.b": "x"}), True),  # a metadata key may hold dots
        # null: absent or null
        ({"metadata.team": None}, _call(metadata={}), True),
        ({"metadata.team": None}, _call(metadata={"team": "data"}), False),
        ({"arguments.repo": None}, _call(arguments=None), True),
        ({"arguments.repo": None}, _call(arguments={"repo": None}), True),
        ({"arguments.repo": None}, _call(arguments={"repo": ""}), False),
        ({"arguments.repo.owner": None}, _call(arguments={"repo": "acme/igris"}), True),  # through a non-object: absent
        # nested arguments
        ({"arguments.repo": "acme/*"}, _call(arguments={"repo": "acme/igris"}), True),
        ({"arguments.repo.owner": "acme"}, _call(arguments={"repo": {"owner": "acme", "name": "igris"}}), True),
        ({"arguments.repo.owner": "acme"}, _call(arguments={"repo": {"owner": {"login": "acme"}}}), False),
        ({"arguments.a.b.c": 3}, _call(arguments={"a": {"b": {"c": 3.0}}}), True),
        ({"arguments.items.0": "x"}, _call(arguments={"items": ["x"]}), False),  # keys name object members only
        ({"arguments.repo": "acme/*"}, _call(arguments=None), False),
        # objects and arrays: deep equality (key order free, array order not, numbers by value)
        ({"arguments.q": {"a": 1, "b": [1, 2]}}, _call(arguments={"q": {"b": [1.0, 2], "a": 1}}), True),
        ({"arguments.q": {"a": 1, "b": [1, 2]}}, _call(arguments={"q": {"b": [2, 1], "a": 1}}), False),
        ({"arguments.q": {"a": 1}}, _call(arguments={"q": {"a": 1, "b": 2}}), False),
        ({"arguments.q": ["a*"]}, _call(arguments={"q": ["abc"]}), False),  # strings inside are literal
        ({"arguments.q": [True]}, _call(arguments={"q": [1]}), False),
        ({"arguments.q": {}}, _call(arguments={"q": {}}), True),
        ({"arguments.q": []}, _call(arguments={"q": None}), False),
        # all conditions must hold
        ({"actor": "alice@*", "metadata.env": "production"}, _call(metadata={"env": "production"}), True),
        ({"actor": "alice@*", "metadata.env": "production"}, _call(metadata={"env": "staging"}), False),
        ({}, _call(), True),
    ],
)
def test_conditions(conditions, call, decides):
    assert (_index(conditions, call) == 0) is decides


def test_rules_are_tried_in_order_and_the_first_match_decides():
    policy = policy_parse({
        "name": "p", "default": "alert",
        "rules": [
            {"id": "admins", "tool": "delete_*", "action": "allow", "conditions": {"actor": "admin@*"}},
            {"id": "deletes", "tool": "delete_*", "action": "deny"},
            {"id": "everything", "tool": "*", "action": "allow", "conditions": {"slug": "*-prod"}},
        ],
    })
    evaluator = Evaluator(policy)
    assert evaluator.rule_index(_call(tool="delete_repo", actor="admin@company.com")) == 0
    assert evaluator.decide(_call(tool="delete_repo", actor="admin@company.com")) == "allow"
    assert evaluator.rule_index(_call(tool="delete_repo")) == 1
    assert evaluator.decide(_call(tool="delete_repo")) == "deny"
    assert evaluator.rule_index(_call(tool="list_issues")) == 2
    assert evaluator.rule_index(_call(tool="list_issues", slug="github-staging")) == DEFAULT
    assert evaluator.decide(_call(tool="list_issues", slug="github-staging")) == "alert"


def test_no_rules_means_the_default_decides():
    policy = policy_parse({"name": "p", "default": "deny", "rules": []})
    assert Evaluator(policy).decide(_call()) == "deny"


def test_the_tool_glob_is_case_sensitive_and_needs_a_tool():
    assert _index({}, _call(tool="Delete_repo"), tool="delete_*") == DEFAULT
    assert _index({}, _call(tool=None), tool="*") == DEFAULT


def test_json_key_types():
    assert json_key(1) == json_key(1.0) and json_key(True) != json_key(1) and json_key("1") != json_key(1)
    assert json_key({"a": [1, {"b": None}]}) == json_key({"a": [1.0, {"b": None}]})
    assert json_key(None) != json_key(False)
