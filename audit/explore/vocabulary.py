"""The filter vocabulary of SPEC §3, stated once.

The FilterSet builds its filters from these terms, the API schema describes them,
the filter panel draws them, and suggestions and facets read which of them to offer
and count. A new filter is one line here (and its behaviour, if it is a new kind).
"""

from dataclasses import dataclass

from audit.events.fields import BY_NAME

METADATA_PREFIX = "metadata."
MAX_METADATA_FILTERS = 20
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
    FilterTerm("q", "Search", SEARCH, "Case-insensitive text in actor, slug, tool, trace id or error."),
    FilterTerm("decision", "Decision", CHOICE, "Policy decision.", field="decision", facet=True),
    FilterTerm("outcome", "Outcome", CHOICE, "How the call ended.", field="outcome"),
    FilterTerm("actor", "Actor", VALUES, "`X-Igris-User` of the call.", field="actor", facet=True, suggest=True),
    FilterTerm("slug", "Connection", VALUES, "Connection slug (`github-prod`).", field="slug", facet=True, suggest=True),
    FilterTerm("tool", "Tool", VALUES, "Tool name (`create_issue`).", field="tool", suggest=True),
    FilterTerm("method", "Method", VALUES, "MCP method (`tools/call`).", field="method", suggest=True),
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


def is_filter_param(name: str) -> bool:
    return name in BY_PARAM or name.startswith(METADATA_PREFIX)


def filter_params(query) -> dict[str, list[str]]:
    """The filter parameters of a query dict, name -> values (for records and manifests)."""
    return {name: query.getlist(name) for name in sorted(query) if is_filter_param(name)}
