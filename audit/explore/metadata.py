"""Metadata filters: `metadata.<key>=<value>`, typed, on both databases.

A value that reads as a JSON number or boolean also matches the stored number or
boolean (`metadata.ticket=4711` finds `{"ticket": 4711}` and `{"ticket": "4711"}`).
On PostgreSQL each pair is a `metadata @> {...}` containment query, served by the GIN
jsonb_path_ops index `audit_event_metadata_gin`; on SQLite an equality on the key's
value read with json_each.
"""

import math
import re

from django.db import connections
from django.db.models import BooleanField, Expression, F, Q

_JSON_INT_RE = re.compile(r"^-?(?:0|[1-9]\d*)$")
_JSON_NUMBER_RE = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")


def metadata_candidates(value: str) -> list:
    """The stored values `value` matches: itself, and its number or boolean reading."""
    candidates = [value]
    if value in ("true", "false"):
        candidates.append(value == "true")
    elif _JSON_INT_RE.match(value):
        candidates.append(int(value))
    elif _JSON_NUMBER_RE.match(value):
        number = float(value)
        if math.isfinite(number):
            candidates.append(number)
    return candidates


class _SqliteMetadataEquals(Expression):
    """SQLite: `metadata` has `key` with a value equal to one of `candidates`, type for type
    (no candidates: has `key` at all).

    Read through json_each rather than a JSON path: SQLite's paths cannot name a key
    that contains a double quote, and any printable key is valid metadata.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, key, candidates):
        super().__init__()
        self.source, self.key, self.candidates = F("metadata"), key, candidates

    def get_source_expressions(self):
        return [self.source]

    def set_source_expressions(self, exprs):
        (self.source,) = exprs

    def as_sql(self, compiler, connection):
        column, params = compiler.compile(self.source)
        conditions, values = [], []
        for candidate in self.candidates:
            if isinstance(candidate, bool):
                conditions.append("j.type = %s")
                values.append("true" if candidate else "false")
            elif isinstance(candidate, (int, float)):
                conditions.append("(j.type IN ('integer', 'real') AND j.atom = %s)")
                values.append(candidate if -(2**63) <= candidate < 2**63 else float(candidate))
            else:
                conditions.append("(j.type = 'text' AND j.atom = %s)")
                values.append(candidate)
        matches = f" AND ({' OR '.join(conditions)})" if conditions else ""
        sql = f"EXISTS (SELECT 1 FROM json_each({column}) AS j WHERE j.key = %s{matches})"
        return sql, (*params, self.key, *values)


def metadata_condition(*, key: str, values: list[str], vendor: str) -> Q:
    """`metadata[key]` equals any of `values` (typed as metadata_candidates says)."""
    candidates = [candidate for value in values for candidate in metadata_candidates(value)]
    if vendor != "postgresql":
        return Q(_SqliteMetadataEquals(key, candidates))
    # Containment, not a key transform: `metadata @> {...}` is what the GIN index serves.
    condition = Q()
    for candidate in candidates:
        condition |= Q(metadata__contains={key: candidate})
    return condition


def metadata_has_key(*, key: str, vendor: str) -> Q:
    if vendor != "postgresql":
        return Q(_SqliteMetadataEquals(key, []))
    return Q(metadata__has_key=key)


def metadata_match(queryset, *, key: str, values: list[str]):
    """Keep events whose `metadata[key]` equals any of `values`."""
    return queryset.filter(metadata_condition(key=key, values=values, vendor=connections[queryset.db].vendor))
