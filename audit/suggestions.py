"""What an organization has actually sent, offered as suggestions in the filter panel.

Read from a bounded sample of the newest events (one indexed query), so the cost
does not grow with the table; cached briefly per organization.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.core.cache import cache

from audit.models import AuditEvent, Organization

SAMPLE_EVENTS = 2000
MAX_VALUES = 50  # per list, most frequent first
CACHE_SECONDS = 60


@dataclass(frozen=True)
class FilterSuggestions:
    actors: list[str] = field(default_factory=list)
    slugs: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    metadata: dict[str, list[str]] = field(default_factory=dict)  # key -> values

    @property
    def metadata_values(self) -> list[str]:
        seen = dict.fromkeys(value for values in self.metadata.values() for value in values)
        return list(seen)[:MAX_VALUES]


def metadata_value_text(value) -> str:
    """How a metadata value is written in a filter URL (metadata.<key>=<text>)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _top(counter: Counter) -> list[str]:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [value for value, _ in ranked[:MAX_VALUES]]


def filter_suggestions(*, org: Organization) -> FilterSuggestions:
    key = f"lens:filter-suggestions:{org.pk}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    actors, slugs, tools, methods = Counter(), Counter(), Counter(), Counter()
    metadata: dict[str, Counter] = defaultdict(Counter)
    rows = (
        AuditEvent.objects.filter(org=org)
        .order_by("-timestamp", "-id")
        .values_list("actor", "slug", "tool", "method", "metadata")[:SAMPLE_EVENTS]
    )
    for actor, slug, tool, method, meta in rows:
        if actor:
            actors[actor] += 1
        slugs[slug] += 1
        if tool:
            tools[tool] += 1
        methods[method] += 1
        for meta_key, meta_value in (meta or {}).items():
            metadata[meta_key][metadata_value_text(meta_value)] += 1
    suggestions = FilterSuggestions(
        actors=_top(actors),
        slugs=_top(slugs),
        tools=_top(tools),
        methods=_top(methods),
        metadata={meta_key: _top(values) for meta_key, values in sorted(metadata.items())},
    )
    cache.set(key, suggestions, CACHE_SECONDS)
    return suggestions
