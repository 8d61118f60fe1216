"""The filter vocabulary of SPEC §3, stated once.

The FilterSet builds its filters from these terms, the API schema describes them,
the filter panel draws them, and suggestions and facets read which of them to offer
and count. A new filter is one line here (and its behaviour, if it is a new kind).
"""

from dataclasses import dataclass

from audit.events.fields import BY_NAME

METADATA_PREFIX = "metadata."
# The same filters as one repeatable parameter, `metadata=<key>=<value>`: what an OpenAPI
# client generator can express (it cannot name a parameter after a key it does not know).
METADATA_PARAM = "metadata"
MAX_METADATA_FILTERS = 20
# What a filter's cleaned value is when the request did not use it (the metadata pairs clean to {}).
UNUSED_VALUES = (None, "", [], {})
TIME_HELP = "RFC 3339 with a zone (2026-11-23T09:15:02Z) or relative to now (15m, 24h, 7d)"

# Kinds of term.
VALUES = "values"  # exact match on any of the repeated values
CHOICE = "choice"  # the same, among the field's declared choices
EXACT = "exact"  # one exact value
MOMENT = "moment"  # a time bound on the event's timestamp
SEARCH = "search"  # free text


class ParameterError(ValueError):
    """Query parameters that cannot be used; `errors` maps each to messages (a 400 in the
    API, a visible error on a page)."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items()))

    @classmethod
    def one(cls, name: str, message: str) -> "ParameterError":
        return cls({name: [message]})


@dataclass(frozen=True)
class FilterTerm:
    name: str  # the query parameter
    label: str  # what people read
    kind: str
    help: str
    field: str | None = None  # the event field it reads (audit/events/fields.py)
    lookup: str = "exact"
    facet: bool = False  # counted beside the event list
    suggest: bool = False  # the panel offers the values this organization has sent

    @property
    def max_length(self) -> int | None:
        return BY_NAME[self.field].max_length if self.field else None

    @property
    def choices(self) -> tuple:
        return BY_NAME[self.field].choices if self.kind == CHOICE else ()

    @property
    def repeats(self) -> bool:
        return self.kind in (VALUES, CHOICE)


TERMS = (
    FilterTerm("q", "Search", SEARCH, "A query in the Lens query language (docs/query-language.md): qualifiers "
               "such as `tool:delete_*` or `-decision:allow`, and words or \"phrases\" searched in the whole event."),
    FilterTerm("decision", "Decision", CHOICE, "Policy decision.", field="decision", facet=True),
    FilterTerm("outcome", "Outcome", CHOICE, "How the call ended.", field="outcome", facet=True),
    FilterTerm("actor", "Actor", VALUES, "`X-Igris-User` of the call.", field="actor", facet=True, suggest=True),
    FilterTerm("slug", "Connection", VALUES, "Connection slug (`github-prod`).", field="slug", facet=True, suggest=True),
    FilterTerm("tool", "Tool", VALUES, "Tool name (`create_issue`).", field="tool", facet=True, suggest=True),
    FilterTerm("method", "Method", VALUES, "MCP method (`tools/call`).", field="method", facet=True, suggest=True),
    FilterTerm("trace_id", "Trace id", EXACT, "Exact trace id.", field="trace_id"),
    FilterTerm("since", "Since", MOMENT, f"Inclusive lower bound: {TIME_HELP}.", field="timestamp", lookup="gte"),
    FilterTerm("until", "Until", MOMENT, f"Inclusive upper bound: {TIME_HELP}.", field="timestamp", lookup="lte"),
)
BY_PARAM = {term.name: term for term in TERMS}
FACETS = tuple(term for term in TERMS if term.facet)
SUGGESTED = tuple(term for term in TERMS if term.suggest)
PANEL_TEXT = tuple(term for term in TERMS if term.kind in (VALUES, EXACT))  # text boxes of the panel
METADATA_HELP = (
    "Replace `<key>` with a metadata key: `metadata.env=production`. Several keys are ANDed; a repeated "
    "key ORs. A value that reads as a JSON number or boolean also matches that number or boolean "
    f"(`metadata.ticket=4711` finds 4711 and \"4711\"). At most {MAX_METADATA_FILTERS} keys."
)
METADATA_PAIRS_HELP = (
    "Metadata filters as `<key>=<value>` (split at the first `=`), repeatable: "
    "`metadata=env%3Dproduction&metadata=feature%3Dtriage` is the same as "
    "`metadata.env=production&metadata.feature=triage` (SPEC §3's form, also accepted). Several keys are ANDed; "
    "a repeated key ORs; a value that reads as a JSON number or boolean also matches that number or boolean. "
    f"At most {MAX_METADATA_FILTERS} keys in all."
)


def is_filter_param(name: str) -> bool:
    return name in BY_PARAM or name == METADATA_PARAM or name.startswith(METADATA_PREFIX)


def filter_params(query) -> dict[str, list[str]]:
    """The filter parameters of a query dict, name -> values (for records and manifests)."""
    return {name: query.getlist(name) for name in sorted(query) if is_filter_param(name)}


# --- the query language (SPEC §7): its qualifiers, stated once -------------------------
# The parser (audit/explore/query/) accepts these names, the search box's autocomplete
# and syntax card list them, and facet clicks write them.

MATCH = "match"  # case-insensitive, `*` wildcards, comma for OR
METADATA_MATCH = "metadata"  # metadata.<key>:<value>, typed as the metadata filter
COMPARE = "compare"  # >, >=, <, <=, = on a number
WINDOW = "window"  # a time bound, as `since`/`until`
PRESENCE = "presence"  # a field is present (has:) or null/empty (no:)


@dataclass(frozen=True)
class Qualifier:
    name: str  # what is typed before the colon
    kind: str
    help: str
    example: str
    field: str | None = None  # the event field it reads (audit/events/fields.py)
    key: str | None = None  # the member of a JSON field (the rule's id or policy)
    param: str | None = None  # the structured filter of the same field: its values are suggested

    @property
    def column(self) -> str | None:
        return BY_NAME[self.field].storage if self.field else None


QUALIFIERS = (
    Qualifier("actor", MATCH, "who made the call", "actor:alice@company.com", field="actor", param="actor"),
    Qualifier("slug", MATCH, "the connection", "slug:github-*", field="slug", param="slug"),
    Qualifier("tool", MATCH, "the tool name", "tool:delete_*", field="tool", param="tool"),
    Qualifier("method", MATCH, "the MCP method", "method:tools/list", field="method", param="method"),
    Qualifier("decision", MATCH, "allow, deny or alert", "decision:deny,alert", field="decision", param="decision"),
    Qualifier("outcome", MATCH, "how the call ended", "outcome:*error", field="outcome", param="outcome"),
    Qualifier("trace", MATCH, "the trace id", "trace:trace-7f3a", field="trace_id"),
    Qualifier("rule", MATCH, "the id of the rule that fired", "rule:r-del", field="rule", key="id"),
    Qualifier("policy", MATCH, "the policy of the rule that fired", "policy:github-guardrails", field="rule", key="policy"),
    Qualifier("metadata", METADATA_MATCH, "a metadata key equals a value", "metadata.env:production", field="metadata"),
    Qualifier("status", COMPARE, "the HTTP status", "status:>=500", field="status_code"),
    Qualifier("duration", COMPARE, "gateway time in ms", "duration:>1000", field="duration_ms"),
    Qualifier("since", WINDOW, "from this time on", "since:24h", field="timestamp"),
    Qualifier("until", WINDOW, "up to this time", "until:2026-11-23T10:00:00Z", field="timestamp"),
    Qualifier("has", PRESENCE, "the field is present", "has:rule"),
    Qualifier("no", PRESENCE, "the field is null or empty", "no:actor"),
)
QUALIFIER_BY_NAME = {qualifier.name: qualifier for qualifier in QUALIFIERS}
QUALIFIER_BY_PARAM = {qualifier.param: qualifier for qualifier in QUALIFIERS if qualifier.param}
# What has:/no: can name (besides metadata.<key>): qualifier-style name -> event field.
PRESENCE_FIELDS = {
    "actor": "actor", "tool": "tool", "arguments": "arguments", "rule": "rule", "reason": "reason",
    "error": "error", "metadata": "metadata", "duration": "duration_ms", "status": "status_code", "server": "server",
}
