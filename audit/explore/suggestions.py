"""What an organization has actually sent, offered as suggestions in the filter panel.

Read from a bounded sample of the newest events (one indexed query), so the cost
does not grow with the table; cached briefly per organization. Which filters get
suggestions is the vocabulary's `suggest` flag.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.core.cache import cache

from audit.accounts.models import Organization
from audit.events.models import AuditEvent
from audit.explore.filters import metadata_key_error
from audit.explore.vocabulary import SUGGESTED

SAMPLE_EVENTS = 2000
MAX_VALUES = 50  # per list, most frequent first
CACHE_SECONDS = 60


@dataclass(frozen=True)
class FilterSuggestions:
    values: dict[str, list[str]] = field(default_factory=dict)  # filter name -> values
    metadata: dict[str, list[str]] = field(default_factory=dict)  # key -> values
    metadata_keys: list[str] = field(default_factory=list)  # most frequent first

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


EMPTY_SUGGESTIONS = FilterSuggestions()


def filter_suggestions(*, org: Organization) -> FilterSuggestions:
    key = f"lens:filter-suggestions:{org.pk}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    counters = {term.name: Counter() for term in SUGGESTED}
    metadata: dict[str, Counter] = defaultdict(Counter)
    rows = (
        AuditEvent.objects.filter(org=org)
        .order_by("-timestamp", "-id")
        .values_list("metadata", *(term.field for term in SUGGESTED))[:SAMPLE_EVENTS]
    )
    for meta, *values in rows:
        for term, value in zip(SUGGESTED, values):
            if value:
                counters[term.name][value] += 1
        for meta_key, meta_value in (meta or {}).items():
            if metadata_key_error(meta_key) is None:  # agents send what they like; offer what a filter can name
                metadata[meta_key][metadata_value_text(meta_value)] += 1
    suggestions = FilterSuggestions(
        values={name: _top(counter) for name, counter in counters.items()},
        metadata={meta_key: _top(values) for meta_key, values in sorted(metadata.items())},
        metadata_keys=_top(Counter({meta_key: values.total() for meta_key, values in metadata.items()})),
    )
    cache.set(key, suggestions, CACHE_SECONDS)
    return suggestions
