"""What the pages' charts read: the API URLs of the current filter (the browser fetches the
histogram and opens the live tail with its session) and the overview's figures."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import QueryDict
from django.urls import reverse

from audit.accounts.models import Organization
from audit.explore import counts
from audit.explore.query.terms import term_text
from audit.explore.vocabulary import is_filter_param

OVERVIEW_WINDOWS = (("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days"))
ERROR_OUTCOMES = ("upstream_error", "error")


def _filters(params: QueryDict, *, drop=()) -> list[tuple[str, str]]:
    return [(name, value) for name, values in params.lists() if is_filter_param(name) and name not in drop
            for value in values]


def chart_context(params: QueryDict) -> dict:
    """The events page's histogram and live-tail URLs, and what the range picker keeps."""
    query = urlencode(_filters(params))
    suffix = f"?{query}" if query else ""
    return {
        "histogram_url": reverse("api-audit-events-histogram") + suffix,
        "stream_url": reverse("api-audit-events-stream") + suffix,
        "range_keep": _filters(params, drop=("since", "until")),
    }


def events_url(**filters) -> str:
    """The events page of these filters (values may be lists)."""
    pairs = [(name, value) for name, values in filters.items()
             for value in (values if isinstance(values, (list, tuple)) else [values])]
    return reverse("event-list") + "?" + urlencode(pairs)


@dataclass(frozen=True)
class Rate:
    label: str
    count: int
    share: float | None  # of all calls in the window
    href: str

    @property
    def share_text(self) -> str:
        if self.share is None:
            return "—"
        percent = self.share * 100
        return f"{percent:.1f}%" if 0 < percent < 10 else f"{percent:.0f}%"


def overview_build(*, org: Organization, since: str) -> dict:
    """The overview's figures for the window `since` (relative, as the filters take it)."""
    window = {"since": since}
    totals = counts.event_totals(org=org, filters=window)
    outcomes = dict((row.value, row.count) for row in counts.event_top(org=org, by="outcome", filters=window, limit=10).results)

    def rate(label, count, **filters):
        return Rate(label, count, count / totals.total if totals.total else None, events_url(since=since, **filters))

    rates = [
        rate("calls", totals.total),
        rate("denied", totals.decisions["deny"], decision="deny"),
        rate("alerted", totals.decisions["alert"], decision="alert"),
        rate("errors", sum(outcomes.get(o, 0) for o in ERROR_OUTCOMES), outcome=list(ERROR_OUTCOMES)),
        rate("rate-limited", outcomes.get("rate_limited", 0), outcome="rate_limited"),
    ]
    denied = {"since": since, "decision": "deny"}
    flagged = {"since": since, "decision": ["deny", "alert"]}

    def top(by, filters, **order):
        rows = counts.event_top(org=org, by=by, filters=filters, limit=8, **order).results
        return [(row, _value_url(by, row.value, filters)) for row in rows]

    return {
        "rates": rates,
        "histogram_url": reverse("api-audit-events-histogram") + "?" + urlencode(window),
        "top_denied_actors": top("actor", denied),
        "top_denied_tools": top("tool", denied),
        "top_rules": top("rule", flagged),
        "slowest_tools": top("tool", window, order="duration"),
        "source": totals.source,
    }


def _value_url(by: str, value, filters: dict) -> str:
    """The events behind one row: the row's filters and its value (a rule by the `rule:` qualifier)."""
    if value is None:
        absent = {"actor": "no:actor", "tool": "no:tool", "rule": "no:rule"}[by]
        return events_url(**filters, q=absent)
    if by == "rule":
        return events_url(**filters, q=term_text("rule", value))
    return events_url(**filters, **{by: value})
