"""Query (nodes.py) -> one Django `Q` over AuditEvent, the same on SQLite and PostgreSQL.

* Words and phrases: `search_text LIKE '%…%'` on the lower-cased full text stored at
  ingest (audit/events/search_text.py), served by a pg_trgm GIN index on PostgreSQL.
* Field qualifiers: the field, lower-cased, equals (or, with `*`, is LIKE) the lower-cased
  value. Fields stored lower-case only (slug, decision, outcome) are compared as they
  are, so their B-tree indexes serve them. SQLite's LOWER knows only ASCII, so there
  `lens_lower` (Python's str.lower, registered in audit/apps.py) does it.
* A term on a field that may be null matches only where the field is present, so its
  negation keeps the events where it is null (`-actor:bob` includes anonymous calls).
"""

from functools import reduce
from operator import and_, or_

from django.db.models import F, Func, Q, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact, In, IsNull, Lookup

from audit.events.fields import BY_NAME, JSON_KINDS, TEXT
from audit.explore import vocabulary as v
from audit.explore.metadata import metadata_condition, metadata_has_key
from audit.explore.query import nodes as n

SEARCH_COLUMN = "search_text"
_OPERATORS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "=": "exact"}


class Like(Lookup):
    """`lhs LIKE pattern`, backslash escaping (PostgreSQL's default; SQLite needs ESCAPE)."""

    lookup_name = "lens_like"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        escape = " ESCAPE '\\'" if connection.vendor == "sqlite" else ""
        return f"{lhs} LIKE {rhs}{escape}", (*lhs_params, *rhs_params)


class Lowered(Func):
    """Unicode lower case: LOWER on PostgreSQL, Python's str.lower on SQLite."""

    function = "LOWER"
    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="lens_lower", **extra)


def _like_pattern(pattern: n.Pattern, *, anywhere: bool) -> str:
    escaped = [chunk.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for chunk in pattern.chunks]
    text = "%".join(escaped)
    return f"%{text}%" if anywhere else text


def _text(term: n.Text) -> Q:
    return Q(Like(F(SEARCH_COLUMN), _like_pattern(term.pattern.lower(), anywhere=True)))


def _stored_lower(field) -> bool:
    """Values that can only be stored lower-case (declared choices, the slug pattern)."""
    return bool(field.choices) or bool(field.pattern and "A-Z" not in field.pattern)


def _match(term: n.Match) -> Q:
    qualifier = v.QUALIFIER_BY_NAME[term.qualifier]
    field = BY_NAME[qualifier.field]
    value = KeyTextTransform(qualifier.key, qualifier.column) if qualifier.key else F(qualifier.column)
    compared = value if _stored_lower(field) else Lowered(value)
    patterns = [pattern.lower() for pattern in term.patterns]
    exact = [pattern.text for pattern in patterns if not pattern.wildcard]
    conditions = [Q(Like(compared, _like_pattern(p, anywhere=False))) for p in patterns if p.wildcard]
    if len(exact) == 1:
        conditions.append(Q(Exact(compared, exact[0])))
    elif exact:
        conditions.append(Q(In(compared, exact)))
    condition = reduce(or_, conditions)
    if field.required and not qualifier.key:
        return condition
    return Q(IsNull(value, False)) & condition


def _compare(term: n.Compare) -> Q:
    column = v.QUALIFIER_BY_NAME[term.qualifier].column
    condition = reduce(or_, (Q(**{f"{column}__{_OPERATORS[op]}": number}) for op, number in term.clauses))
    return Q(**{f"{column}__isnull": False}) & condition


def _window(term: n.Window) -> Q:
    lookup = "gte" if term.qualifier == "since" else "lte"
    return Q(**{f"{v.QUALIFIER_BY_NAME[term.qualifier].column}__{lookup}": term.moment})


def _present(name: str, vendor: str) -> Q:
    if name.startswith(v.METADATA_PREFIX):
        return metadata_has_key(key=name[len(v.METADATA_PREFIX) :], vendor=vendor)
    field = BY_NAME[v.PRESENCE_FIELDS[name]]
    column = field.storage
    present = Q(**{f"{column}__isnull": False})
    if field.kind == TEXT:
        return present & ~Q(**{column: ""})
    if field.kind in JSON_KINDS and field.name in ("arguments", "metadata"):
        return present & ~Q(**{column: {}})
    return present


def _presence(term: n.Presence, vendor: str) -> Q:
    present = [_present(name, vendor) for name in term.fields]
    if term.present:
        return reduce(or_, present)
    return reduce(or_, (~condition for condition in present))


def _term(term: n.Term, vendor: str) -> Q:
    if isinstance(term, n.Not):
        return ~_term(term.term, vendor)
    if isinstance(term, n.Text):
        return _text(term)
    if isinstance(term, n.Match):
        return _match(term)
    if isinstance(term, n.MetadataMatch):
        return metadata_condition(key=term.key, values=list(term.values), vendor=vendor)
    if isinstance(term, n.Compare):
        return _compare(term)
    if isinstance(term, n.Window):
        return _window(term)
    if isinstance(term, n.Presence):
        return _presence(term, vendor)
    raise TypeError(f"no compilation for {type(term).__name__}")


def query_condition(query: n.Query, *, vendor: str) -> Q:
    """The events matching every term of `query` (no terms: every event)."""
    return reduce(and_, (_term(term, vendor) for term in query.terms), Q())
