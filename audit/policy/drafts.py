"""A draft to edit, written from the rules the trail recorded (`selectors.trail_policy`).

The gateway records each rule as it fired: `{"id", "policy", "index", "tool", "action",
"conditions"}`. A recorded condition that a draft cannot state (a field such as `user`,
or an operator object such as `{"not_in": [...]}`) is left out, and a comment at the top
of the draft says so, rule by rule: the draft is YAML, so those notes travel with it.
Everything taken from events is written through `json.dumps` into the comments, so no
recorded text can end a comment line and become part of the policy.
"""

import json

import yaml

from audit.events.fields import DECISIONS
from audit.policy.model import PolicyError, policy_parse

FALLBACK_DEFAULT = "allow"


def _show(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "…"


def _condition_problem(field, value) -> str | None:
    """Why a recorded condition cannot go into a draft, or None when it can."""
    if isinstance(value, dict):
        return "an operator object, not a value (a draft compares values; write it as a glob or a value)"
    try:
        policy_parse({"name": "n", "default": "allow", "rules": [{"id": "r", "tool": "*", "action": "allow",
                                                                    "conditions": {field: value}}]})
    except PolicyError as error:
        return error.problems[0].message
    return None


def policy_draft(*, name: str, rules: list[dict], slugs: list[str], default: str | None) -> str:
    """The YAML text of a draft holding `rules` (recorded rule objects) in the order given."""
    notes, drafted, used_ids = [], [], set()
    for position, recorded in enumerate(rules):
        rule_id = recorded.get("id") if isinstance(recorded.get("id"), str) and recorded.get("id") else f"rule-{position}"
        while rule_id in used_ids:
            rule_id += "-again"
        used_ids.add(rule_id)
        tool = recorded.get("tool") if isinstance(recorded.get("tool"), str) and recorded.get("tool") else "*"
        action = recorded.get("action") if recorded.get("action") in DECISIONS else None
        if action is None:
            notes.append(f"{_show(rule_id)}: recorded action {_show(recorded.get('action'))} is not allow, deny or alert; set to deny")
            action = "deny"
        conditions = {}
        recorded_conditions = recorded.get("conditions") if isinstance(recorded.get("conditions"), dict) else {}
        for field, value in recorded_conditions.items():
            problem = _condition_problem(field, value)
            if problem:
                notes.append(f"{_show(rule_id)}: left out {_show(field)}: {_show(value)} — {problem}")
            else:
                conditions[field] = value
        drafted.append({"id": rule_id, "tool": tool, "action": action, "conditions": conditions})
    header = [
        f"Draft from the rules of policy {_show(name)} recorded in events, in index order.",
        f"It fired on: {', '.join(_show(slug) for slug in slugs) or 'no connection'} — narrow the window to them to compare like with like.",
    ]
    if default in DECISIONS:
        header.append(f"default: {default}, the most common decision of calls on those connections that no rule matched.")
    else:
        header.append(f"default: {FALLBACK_DEFAULT} — no call without a rule was seen on those connections; set yours.")
    comments = "".join(f"# {line}\n" for line in header + [f"- {note}" for note in notes])
    document = {"name": name, "default": default if default in DECISIONS else FALLBACK_DEFAULT, "rules": drafted}
    return comments + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=10_000)
