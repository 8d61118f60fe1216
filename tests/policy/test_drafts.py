"""A draft written from recorded rules: YAML that parses back, with notes for what it left out."""

import yaml

from audit.policy.drafts import policy_draft
from audit.policy.model import policy_load


def _recorded(rule_id, index, tool="*", action="deny", conditions=None):
    return {"id": rule_id, "policy": "p", "index": index, "tool": tool, "action": action, "conditions": conditions or {}}


def test_the_draft_keeps_what_a_policy_can_state_and_says_what_it_left_out():
    text = policy_draft(name="github-guardrails", slugs=["github-prod"], default="deny", rules=[
        _recorded("r-merge", 1, "merge_*", "alert", {"metadata.env": "production", "arguments.n": 3}),
        _recorded("r-del", 2, "delete_*", "deny", {"user": {"not_in": ["admin@company.com"]}, "actor": "bob@*"}),
        _recorded("r-sql", 3, "run_query", "alert", {"arguments.query": {"matches": "(?i)select \\*"}}),
    ])
    policy = policy_load(text)
    assert (policy.name, policy.default) == ("github-guardrails", "deny")
    assert [(r.id, r.tool, r.action, {c.field: c.value for c in r.conditions}) for r in policy.rules] == [
        ("r-merge", "merge_*", "alert", {"metadata.env": "production", "arguments.n": 3}),
        ("r-del", "delete_*", "deny", {"actor": "bob@*"}),
        ("r-sql", "run_query", "alert", {}),
    ]
    notes = [line for line in text.splitlines() if line.startswith("# - ")]
    assert notes == [
        '# - "r-del": left out "user": {"not_in": ["admin@company.com"]} — an operator object, not a value '
        "(a draft compares values; write it as a glob or a value)",
        '# - "r-sql": left out "arguments.query": {"matches": "(?i)select \\\\*"} — an operator object, not a value '
        "(a draft compares values; write it as a glob or a value)",
    ]
    assert '# It fired on: "github-prod"' in text


def test_a_field_the_draft_cannot_state_is_left_out_with_the_reason():
    text = policy_draft(name="p", slugs=[], default=None, rules=[_recorded("r", 0, conditions={"user": "alice"})])
    assert '# - "r": left out "user": "alice" — is not a condition field' in text
    assert "default: allow — no call without a rule was seen" in text
    assert policy_load(text).default == "allow"


def test_recorded_text_cannot_escape_the_comments():
    hostile = "x\nrules: []\n#"
    text = policy_draft(name=hostile, slugs=[hostile], default="allow", rules=[
        _recorded(hostile, 0, conditions={"user": hostile}), _recorded(None, 1, action="block"), _recorded("dup", 2),
        _recorded("dup", 3),
    ])
    document = yaml.safe_load(text)
    assert document["name"] == hostile
    assert [rule["id"] for rule in document["rules"]] == [hostile, "rule-1", "dup", "dup-again"]
    assert document["rules"][1]["action"] == "deny"
    assert all(line.startswith("#") for line in text.split("name:")[0].splitlines())
