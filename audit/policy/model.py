"""A draft policy (SPEC §14), validated into an immutable structure.

    {"name": "github-guardrails", "default": "allow",
     "rules": [{"id": "r-del", "tool": "delete_*", "action": "deny",
                "conditions": {"actor": "*@contractors.example", "arguments.repo": "acme/*"}}]}

`policy_parse` checks a decoded document and names, for anything wrong, the rule
(index and id) and the field; `policy_load` reads JSON, or YAML (PyYAML's safe
loader) when the text is not JSON. Values compare as docs/policy-what-if.md states:
strings are case-sensitive globs (`*` is the only wildcard), numbers by numeric value,
booleans and null only as themselves, objects and arrays by deep equality.
"""

import json
import math
import re
from dataclasses import dataclass

import yaml

from audit.events.fields import DECISIONS

MAX_POLICY_BYTES = 256 * 1024  # the draft's text
MAX_RULES = 500
MAX_CONDITIONS = 50  # per rule
MAX_TEXT = 1000  # characters of a name, glob or string value
MAX_STARS = 20  # wildcards in one glob: bounds the matching work in SQL and in Python
MAX_PATH = 16  # keys in one arguments.<key>.<key>… path
MAX_DEPTH = 32  # nesting of a value (the door's limit for events)
MAX_NODES = 20_000  # JSON values in the whole document (YAML aliases can multiply a small text)
SAFE_INTEGER = 2**53  # numbers beyond it are not exact in JavaScript (the gateway), nor alike in SQL
SOURCES = ("actor", "slug", "metadata", "arguments")
FIELD_HELP = "use actor, slug, metadata.<key> or arguments.<key>[.<key>…]"

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_POLICY_KEYS = ("name", "default", "rules")
_RULE_KEYS = ("id", "tool", "action", "conditions")


@dataclass(frozen=True)
class Condition:
    field: str  # as written: "actor", "metadata.env", "arguments.repo.name"
    source: str  # one of SOURCES
    path: tuple[str, ...]  # keys below the source: one for metadata, one or more for arguments
    value_json: str  # the value as canonical JSON text (immutable; `value` decodes it)

    @property
    def value(self):
        return json.loads(self.value_json)


@dataclass(frozen=True)
class Rule:
    index: int
    id: str
    tool: str  # a glob
    action: str
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Policy:
    name: str
    default: str
    rules: tuple[Rule, ...]

    def action_of(self, index: int) -> str:
        """The decision of rule `index`, or the default for -1 (no rule matched)."""
        return self.default if index < 0 else self.rules[index].action


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a draft: where (rule index and id, when in a rule), which field, what."""

    field: str  # "default", "rules", or a rule's "tool", "conditions.user", …
    message: str
    rule: int | None = None
    rule_id: str | None = None

    @property
    def location(self) -> str:
        return f"rules[{self.rule}].{self.field}" if self.rule is not None else self.field

    def __str__(self):
        where = "" if self.rule is None else f"rule {self.rule}" + (f" (id {self.rule_id!r})" if self.rule_id else "") + ", "
        return f"{where}{self.field}: {self.message}"


class PolicyError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(problem) for problem in problems))


def policy_load(text: str) -> Policy:
    """Parse a draft written as JSON or YAML."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise PolicyError([Problem("policy", f"is over {MAX_POLICY_BYTES // 1024} KiB")])
    if not text.strip():
        raise PolicyError([Problem("policy", "is empty: write a policy as JSON or YAML")])
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or "unreadable"
            raise PolicyError([Problem("policy", f"is neither JSON nor YAML: {problem}{where}")]) from None
    return policy_parse(data)


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def policy_parse(data) -> Policy:
    """Validate a decoded draft; raise PolicyError naming every problem found."""
    checker = _Checker()
    policy = checker.policy(data)
    if checker.problems:
        raise PolicyError(checker.problems)
    return policy


class _Checker:
    def __init__(self):
        self.problems: list[Problem] = []
        self.nodes = 0

    def add(self, field, message, rule=None):
        index, rule_id = rule or (None, None)
        self.problems.append(Problem(_label(field), message, index, None if rule_id is None else _label(rule_id)))

    def policy(self, data):
        if not isinstance(data, dict):
            self.add("policy", f"must be an object with name, default and rules, not {_kind(data)}")
            return None
        self._unknown_keys(data, _POLICY_KEYS, where=None)
        name = self.text(data.get("name"), "name", None)
        default = data.get("default")
        if default not in DECISIONS:
            self.add("default", f"must be one of {', '.join(DECISIONS)}; got {_show(default)}")
        rules = data.get("rules", [])
        if not isinstance(rules, list):
            self.add("rules", f"must be a list of rules, not {_kind(rules)}")
            rules = []
        elif len(rules) > MAX_RULES:
            self.add("rules", f"at most {MAX_RULES} rules")
            rules = []
        parsed, seen = [], {}
        for index, item in enumerate(rules):
            rule = self.rule(index, item)
            rule_id = item.get("id") if isinstance(item, dict) else None
            if isinstance(rule_id, str) and rule_id:
                if rule_id in seen:
                    self.add("id", f"repeats the id of rule {seen[rule_id]}; ids must be unique", (index, rule_id))
                seen.setdefault(rule_id, index)
            if rule is not None:
                parsed.append(rule)
        return Policy(name=name, default=default, rules=tuple(parsed))

    def rule(self, index, item):
        if not isinstance(item, dict):
            self.add("rule", f"must be an object with id, tool, action and conditions, not {_kind(item)}", (index, None))
            return None
        raw_id = item.get("id")
        where = (index, raw_id if isinstance(raw_id, str) and raw_id else None)
        count = len(self.problems)
        self._unknown_keys(item, _RULE_KEYS, where=where)
        rule_id = self.text(raw_id, "id", where)
        tool = self.glob(item.get("tool"), "tool", where, required=True)
        action = item.get("action")
        if action not in DECISIONS:
            self.add("action", f"must be one of {', '.join(DECISIONS)}; got {_show(action)}", where)
        raw_conditions = item.get("conditions", {})
        conditions = []
        if raw_conditions is None:
            raw_conditions = {}
        if not isinstance(raw_conditions, dict):
            self.add("conditions", f"must be an object of field: value, not {_kind(raw_conditions)}", where)
        elif len(raw_conditions) > MAX_CONDITIONS:
            self.add("conditions", f"at most {MAX_CONDITIONS} conditions", where)
        else:
            for field, value in raw_conditions.items():
                condition = self.condition(field, value, where)
                if condition is not None:
                    conditions.append(condition)
        if len(self.problems) > count:
            return None
        return Rule(index=index, id=rule_id, tool=tool, action=action, conditions=tuple(conditions))

    def condition(self, field, value, where):
        label = f"conditions.{field}"
        count = len(self.problems)
        if not isinstance(field, str):
            self.add("conditions", f"field names are strings, not {_kind(field)}", where)
            return None
        source, _, rest = field.partition(".")
        path = (rest,) if source == "metadata" else tuple(rest.split(".")) if rest else ()
        if source not in SOURCES or bool(rest) == (source in ("actor", "slug")):
            self.add(label, f"is not a condition field: {FIELD_HELP}", where)
        elif not storable(rest):
            self.add(label, "keys must be valid Unicode without NUL", where)
        elif source == "metadata" and (len(rest) > 128 or _CONTROL_RE.search(rest)):
            self.add(label, "metadata keys are 1–128 printable characters", where)
        elif source == "arguments" and ("" in path or len(path) > MAX_PATH):
            self.add(label, f"write arguments.<key>[.<key>…]: no empty key, at most {MAX_PATH} keys", where)
        elif isinstance(value, str):
            self.glob(value, label, where)
        elif source in ("actor", "slug") and value is not None:
            self.add(label, f"must be a string (a glob) or null, not {_show(value)}", where)
        elif source == "metadata" and isinstance(value, (dict, list)):
            self.add(label, "metadata values are strings, numbers or booleans: an object or array never matches", where)
        else:
            value = self.value(value, label, where)
        if len(self.problems) > count:
            return None
        return Condition(field=field, source=source, path=path, value_json=json.dumps(value, ensure_ascii=False, sort_keys=True))

    def text(self, value, field, where):
        if not isinstance(value, str) or not value.strip():
            self.add(field, f"must be a non-empty string, not {_show(value)}", where)
        elif len(value) > MAX_TEXT or _CONTROL_RE.search(value) or not storable(value):
            self.add(field, f"must be at most {MAX_TEXT} printable characters", where)
        return value

    def glob(self, value, field, where, required=False):
        if not isinstance(value, str) or (required and not value):
            kind = "a non-empty string" if required else "a string or null"
            self.add(field, f"must be {kind} (a glob: * matches anything), not {_show(value)}", where)
        elif len(value) > MAX_TEXT or not storable(value):
            self.add(field, f"must be at most {MAX_TEXT} characters of valid Unicode, without NUL", where)
        elif value.count("*") > MAX_STARS:
            self.add(field, f"at most {MAX_STARS} wildcards", where)
        return value

    def value(self, value, field, where):
        """A JSON value, checked whole: numbers exact, strings storable, bounded size."""
        try:
            return self._value(value, field, where, 0)
        except _TooBig:
            return None

    def _value(self, value, field, where, depth):
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            self.add(field, f"is too large or too deep (at most {MAX_NODES} values, {MAX_DEPTH} levels)", where)
            raise _TooBig
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            if not math.isfinite(value) or abs(value) > SAFE_INTEGER:
                self.add(field, f"numbers must be finite and within ±2^53, not {_show(value)}", where)
            return value
        if isinstance(value, str):
            if len(value) > MAX_TEXT or not storable(value):
                self.add(field, f"strings must be at most {MAX_TEXT} characters of valid Unicode, without NUL", where)
            return value
        if isinstance(value, list):
            return [self._value(item, field, where, depth + 1) for item in value]
        if isinstance(value, dict):
            if not all(isinstance(key, str) and storable(key) for key in value):
                self.add(field, "object keys must be strings of valid Unicode, without NUL", where)
            return {str(key): self._value(item, field, where, depth + 1) for key, item in value.items()}
        self.add(field, f"{_show(value)} is not a JSON value (quote it in YAML)", where)
        return None

    def _unknown_keys(self, data, known, *, where):
        for key in data:
            if key not in known:
                self.add(str(key)[:80], f"is not a field here: expected {', '.join(known)}", where)


class _TooBig(Exception):
    pass


def storable(text: str) -> bool:
    """Text PostgreSQL can hold: no NUL, no lone surrogate (JSON can escape both)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def _label(text) -> str:
    """A name from the draft, made safe to write into an answer (lone surrogates escaped)."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _show(value) -> str:
    try:
        text = _label(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
