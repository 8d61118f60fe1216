"""The policy evaluator in Python (SPEC §14): which rule decides a call, or the default.

The same semantics are compiled to SQL in audit/policy/compile.py; the tests hold the
two to identical answers. A policy is compiled once into plain closures so that the
streaming replay evaluates millions of calls without re-reading the policy.
"""

from collections.abc import Callable

from audit.policy.model import Condition, Policy

ABSENT = object()  # a field the call does not have
DEFAULT = -1  # the rule index of "no rule matched"


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Case-sensitive glob where `*` matches any run of characters (newlines too); nothing else is special.

    Split at the stars: the first piece must start the text, the last end it, and the
    pieces between are found left to right. Linear in the text, never backtracking.
    """
    if "*" not in pattern:
        return pattern.__eq__
    first, *middle, last = pattern.split("*")
    fixed = len(first) + len(last)

    def match(text: str) -> bool:
        if len(text) < fixed or not text.startswith(first) or not text.endswith(last):
            return False
        position, end = len(first), len(text) - len(last)
        for piece in middle:
            found = text.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True

    return match


def json_key(value):
    """A hashable form of a JSON value under which two values are equal exactly when the
    policy says they match by equality: numbers by numeric value (1 = 1.0), booleans
    only as booleans (true ≠ 1), strings exactly, objects regardless of key order."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)  # Python's 1 == 1.0, and hashes alike
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(json_key(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((key, json_key(item)) for key, item in value.items()))
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _reader(condition: Condition) -> Callable[[dict], object]:
    """Reads the condition's field from a call (a dict of actor, slug, metadata, arguments)."""
    source, path = condition.source, condition.path
    if source in ("actor", "slug"):
        return lambda call: call[source]

    def read(call):
        value = call[source]
        for key in path:
            if not isinstance(value, dict):
                return ABSENT
            value = value.get(key, ABSENT)
        return value

    return read


def condition_matcher(condition: Condition) -> Callable[[dict], bool]:
    read, expected = _reader(condition), condition.value
    if expected is None:
        return lambda call: (value := read(call)) is None or value is ABSENT
    if isinstance(expected, str):
        match = glob_matcher(expected)
        return lambda call: isinstance(value := read(call), str) and match(value)
    key = json_key(expected)

    def equal(call):
        value = read(call)
        return value is not ABSENT and json_key(value) == key

    return equal


class Evaluator:
    """`Evaluator(policy).rule_index(call)`: the index of the first rule that matches, or DEFAULT.

    `call` holds `tool`, `actor`, `slug`, `metadata` and `arguments` as stored (None when absent).
    """

    def __init__(self, policy: Policy):
        self.policy = policy
        self._rules = [
            (rule.index, glob_matcher(rule.tool), [condition_matcher(c) for c in rule.conditions])
            for rule in policy.rules
        ]

    def rule_index(self, call: dict) -> int:
        tool = call["tool"]
        for index, tool_matches, conditions in self._rules:
            if isinstance(tool, str) and tool_matches(tool) and all(holds(call) for holds in conditions):
                return index
        return DEFAULT

    def decide(self, call: dict) -> str:
        return self.policy.action_of(self.rule_index(call))
