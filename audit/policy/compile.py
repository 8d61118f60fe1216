"""The policy as one SQL expression: `CASE WHEN <rule 0> THEN 0 WHEN <rule 1> THEN 1 … ELSE -1 END`.

The semantics are those of audit/policy/evaluate.py, exactly; every value from the
draft is a bound parameter, never spliced into the SQL text.

* PostgreSQL: globs are `LIKE` with `%`, `_` and `\\` escaped (LIKE is case-sensitive
  there); JSON fields are read with `->` one key at a time (any key is safe as a
  parameter) and compared as jsonb, whose `=` is numeric for numbers and
  order-independent for objects, as `json_key` is.
* SQLite: globs are `GLOB` (case-sensitive; LIKE is not), with `?` and `[` made
  literal; JSON fields are read with `json_type`/`json_extract` on a path `$."k"."k"`.
  SQLite 3.40 compares a path's keys with the stored text as written, and Django stores
  JSON with non-ASCII escaped, so keys outside printable ASCII, or holding `"` or `\\`,
  cannot be addressed that way: such a condition, and an object or array value, is not
  compiled (NotCompilable) and the replay streams through the Python evaluator instead.
"""

import re

from django.db.models import Expression, F, IntegerField

from audit.policy.evaluate import DEFAULT
from audit.policy.model import Condition, Policy

COLUMNS = ("tool", "actor", "slug", "metadata", "arguments")
_SQLITE_PLAIN_KEY = re.compile(r'^[\x20-\x7e]+$')


class NotCompilable(Exception):
    """A condition this database cannot evaluate exactly in SQL."""


def like_pattern(glob: str) -> str:
    r"""A glob as a PostgreSQL LIKE pattern (escape character `\`)."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def sqlite_glob_pattern(glob: str) -> str:
    """A glob as an SQLite GLOB pattern: only `*` stays a wildcard."""
    return "".join("[?]" if char == "?" else "[[]" if char == "[" else char for char in glob)


def _sqlite_path(path: tuple[str, ...]) -> str:
    for key in path:
        if not _SQLITE_PLAIN_KEY.match(key) or '"' in key or "\\" in key:
            raise NotCompilable(f"the key {key!r} cannot be addressed in an SQLite JSON path")
    return "$" + "".join(f'."{key}"' for key in path)


class _Postgres:
    def glob(self, sql, pattern):
        if "*" not in pattern:
            return f"{sql} = %s", [pattern]
        return f"{sql} LIKE %s", [like_pattern(pattern)]

    def json_condition(self, column, condition: Condition):
        value = condition.value
        node = column + " -> %s::text" * len(condition.path)
        keys = list(condition.path)
        if value is None:
            return f"({node} IS NULL OR {node} = 'null'::jsonb)", keys + keys
        if isinstance(value, str) and "*" in value:
            text = f"({node} #>> '{{}}')"
            return f"(jsonb_typeof({node}) = 'string' AND {text} LIKE %s)", [*keys, *keys, like_pattern(value)]
        return f"{node} = %s::jsonb", [*keys, condition.value_json]


class _Sqlite:
    def glob(self, sql, pattern):
        if "*" not in pattern:
            return f"{sql} = %s", [pattern]
        return f"{sql} GLOB %s", [sqlite_glob_pattern(pattern)]

    def json_condition(self, column, condition: Condition):
        value, path = condition.value, _sqlite_path(condition.path)
        kind = f"json_type({column}, %s)"
        if value is None:
            return f"({kind} IS NULL OR {kind} = 'null')", [path, path]
        if isinstance(value, bool):
            return f"{kind} = %s", [path, "true" if value else "false"]
        if isinstance(value, (int, float)):
            return f"({kind} IN ('integer', 'real') AND json_extract({column}, %s) = %s)", [path, path, value]
        if isinstance(value, str):
            test, params = self.glob(f"json_extract({column}, %s)", value)
            return f"({kind} = 'text' AND {test})", [path, path, *params]
        raise NotCompilable("SQLite cannot compare a JSON object or array exactly")


def _condition_sql(dialect, columns, condition: Condition):
    column = columns[condition.source]
    if condition.source in ("actor", "slug"):
        value = condition.value
        return (f"{column} IS NULL", []) if value is None else dialect.glob(column, value)
    return dialect.json_condition(column, condition)


def rule_index_sql(policy: Policy, *, columns: dict[str, str], vendor: str) -> tuple[str, list]:
    """The CASE expression giving each row's rule index (DEFAULT when none matches).

    `columns` maps tool, actor, slug, metadata and arguments to their SQL. Raises
    NotCompilable when some condition cannot be evaluated exactly on `vendor`.
    """
    dialect = _Postgres() if vendor == "postgresql" else _Sqlite()
    if not policy.rules:
        return "%s", [DEFAULT]
    branches, params = [], []
    for rule in policy.rules:
        parts = [dialect.glob(columns["tool"], rule.tool)]
        parts += [_condition_sql(dialect, columns, condition) for condition in rule.conditions]
        branches.append("WHEN " + " AND ".join(sql for sql, _ in parts) + " THEN %s")
        params += [param for _, part_params in parts for param in part_params] + [rule.index]
    return "CASE " + " ".join(branches) + " ELSE %s END", [*params, DEFAULT]


def policy_compiles(policy: Policy, *, vendor: str) -> bool:
    try:
        rule_index_sql(policy, columns={name: name for name in COLUMNS}, vendor=vendor)
    except NotCompilable:
        return False
    return True


class RuleIndex(Expression):
    """`queryset.annotate(rule_index=RuleIndex(policy))`: the draft's rule index per event."""

    output_field = IntegerField()

    def __init__(self, policy: Policy):
        super().__init__()
        self.policy = policy
        self.sources = [F(name) for name in COLUMNS]

    def get_source_expressions(self):
        return self.sources

    def set_source_expressions(self, exprs):
        self.sources = list(exprs)

    def as_sql(self, compiler, connection):
        columns, params = {}, []
        for name, source in zip(COLUMNS, self.sources):
            sql, column_params = compiler.compile(source)
            if column_params:
                raise NotCompilable(f"the column {name} compiled with parameters")
            columns[name] = sql
        return rule_index_sql(self.policy, columns=columns, vendor=connection.vendor)
