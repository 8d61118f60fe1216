"""Template helpers for the explorer. Every piece of event content passes through
format_html/escape here: nothing from an event is ever marked safe unescaped."""

import json
import re
import unicodedata
from urllib.parse import quote

from django import template
from django.http import QueryDict
from django.urls import reverse
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from audit.explore.pagination import CURSOR_PARAM
from audit.explore.timeline import format_ms
from audit.integrity import selectors as integrity_selectors

register = template.Library()

FOLD_AT = 120  # characters: longer strings are folded behind a <details>
FOLD_ITEMS = 30  # arrays/objects with more members than this start folded


@register.filter
def duration(value):
    return "—" if value is None else format_ms(float(value))


@register.filter
def utc(value):
    """An unambiguous timestamp, to the millisecond."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d} UTC"


@register.filter
def utc_short(value):
    return "—" if value is None else value.strftime("%b %d %H:%M:%S")


def _params(params) -> QueryDict:
    copy = params.copy() if isinstance(params, QueryDict) else QueryDict(mutable=True)
    copy._mutable = True
    copy.pop(CURSOR_PARAM, None)  # a cursor is never carried into a new filter
    return copy


@register.simple_tag
def href_set(params, key, value):
    """The current filter with `key` set to just `value` (a facet click)."""
    query = _params(params)
    query.setlist(key, [str(value)])
    return "?" + query.urlencode()


@register.simple_tag
def href_without(params, key, value=None):
    """The current filter without `key` (or without that one value of it)."""
    query = _params(params)
    if value is None:
        query.pop(key, None)
    else:
        kept = [v for v in query.getlist(key) if v != str(value)]
        if kept:
            query.setlist(key, kept)
        else:
            query.pop(key, None)
    # "./" is the list page itself (its URL ends in "/") with no filter at all.
    return "?" + query.urlencode() if query else "./"


@register.simple_tag
def href_page(params, cursor):
    """The current filter at the page `cursor` (a KeysetPage edge) points to."""
    query = _params(params)
    query[CURSOR_PARAM] = cursor.encode()
    return "?" + query.urlencode()


@register.simple_tag
def trace_url(trace_id, api=False):
    """A trace's page (or API) URL with the id percent-encoded whole, `/` included: an id
    like `../../events/evt-1` stays one path segment, which a browser cannot resolve to
    another page as it did with `{% url %}` (that leaves `/` and `..` as they are).
    Ids `.` and `..` are refused at the door: no encoding keeps a browser from resolving them."""
    base = reverse("api-traces") + "/" if api else reverse("trace-list")
    return base + quote(trace_id, safe="") + ("" if api else "/")


@register.simple_tag
def query_string(params):
    query = _params(params)
    return query.urlencode()


# Characters that change how text reads without showing themselves: controls (Cc),
# format characters (Cf: bidirectional overrides and isolates, zero-width spaces and
# joiners, the BOM, soft hyphens, tags), line and paragraph separators, and the blank
# Hangul fillers. Where people read identities they are shown as labelled marks.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


def _is_hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN_CATEGORIES or char in _BLANK_LETTERS


# In ASCII the hidden characters are exactly the controls: one regex search instead of a
# Unicode lookup per character (the pages' most frequent filter, bench/profile.py).
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _any_hidden(text: str) -> bool:
    if text.isascii():
        return _ASCII_CONTROL.search(text) is not None
    return any(_is_hidden(char) for char in text)


def _marked(text: str) -> SafeString:
    """Escaped text with every hidden character as a visible, labelled mark."""
    if not _any_hidden(text):
        return escape(text)
    parts = []
    for char in text:
        if _is_hidden(char):
            code = f"U+{ord(char):04X}"
            name = unicodedata.name(char, "control character")
            parts.append(format_html('<span class="hidden-char" title="{} {}">{}</span>', code, name.lower(), code))
        else:
            parts.append(escape(char))
    return mark_safe("".join(parts))


@register.filter
def reveal(value):
    """Untrusted text where people read identities (actor, tool, slug, ids, metadata):
    isolated from the text around it (<bdi>: a right-to-left override cannot reorder
    the page), hidden characters shown. `admin\u202e@moc.evil` reads as written."""
    if value is None or value == "":
        return ""
    return format_html("<bdi>{}</bdi>", _marked(str(value)))


@register.filter
def reveal_text(value):
    """`reveal` for plain text (a title, an attribute): hidden characters spelled out."""
    text = str(value or "")
    if not _any_hidden(text):
        return text
    return "".join(f"[U+{ord(char):04X}]" if _is_hidden(char) else char for char in text)


@register.filter
def hidden_label(value):
    """` label="…"` spelling out the hidden characters of a suggestion, when it has any (the
    option's value stays exact, for filtering)."""
    text = str(value or "")
    return format_html(' label="{}"', reveal_text(text)) if _any_hidden(text) else ""


class _Budget:
    """Characters a JSON tree may still show; None is no bound."""

    def __init__(self, limit):
        self.left = limit
        self.elided = False

    def take(self, text: str) -> str:
        if self.left is None:
            return text
        if len(text) > self.left:
            self.elided = True
            text = text[: max(self.left, 0)]
        self.left -= len(text)
        return text

    @property
    def spent(self):
        return self.left is not None and self.left <= 0


def _scalar(value, budget) -> SafeString:
    kind = "null" if value is None else "bool" if isinstance(value, bool) else "num" if isinstance(value, (int, float)) else "str"
    if kind != "str":
        return format_html('<span class="j-{}">{}</span>', kind, budget.take(json.dumps(value)))
    shown = budget.take(value)
    cut = len(shown) < len(value)
    text = _marked(json.dumps(shown, ensure_ascii=False)[:-1] + ("…" if cut else '"'))
    if len(value) > FOLD_AT or "\n" in value:
        return format_html(
            '<details class="fold"><summary><span class="j-str">{}</span> <span class="muted">({} chars)</span></summary>'
            '<span class="j-str j-full">{}</span></details>',
            _marked(json.dumps(value[:60].split("\n")[0] + "…", ensure_ascii=False)),
            len(value),
            text,
        )
    return format_html('<span class="j-str">{}</span>', text)


def _node(value, depth, budget) -> SafeString:
    pad = "  " * (depth + 1)
    end_pad = "  " * depth
    if isinstance(value, (dict, list)):
        if not value:
            return mark_safe("{}" if isinstance(value, dict) else "[]")
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        lines = []
        for shown, (key, item) in enumerate(items):
            if budget.spent:
                budget.elided = True
                lines.append(format_html('{}<span class="muted">… {} more</span>', pad, len(items) - shown))
                break
            if isinstance(value, dict):
                key_html = _marked(json.dumps(budget.take(str(key)), ensure_ascii=False))
                lines.append(format_html('{}<span class="j-key">{}</span>: {}', pad, key_html, _node(item, depth + 1, budget)))
            else:
                lines.append(format_html("{}{}", pad, _node(item, depth + 1, budget)))
        body = mark_safe(",\n".join(lines))
        opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
    else:
        return _scalar(value, budget)
    if depth > 0 and len(items) > FOLD_ITEMS:
        return format_html(
            '<details class="fold"><summary>{} <span class="muted">{} items</span> {}</summary>{}\n{}{}</details>',
            opening, len(items), closing, body, end_pad, closing,
        )
    return format_html("{}\n{}\n{}{}", opening, body, end_pad, closing)


@register.simple_tag
def json_tree(value, limit=None, full_url=None):
    """Pretty-printed JSON as escaped HTML, long strings and big collections folded, hidden
    characters shown. With `limit`, at most about that many characters are drawn (chain
    views: a trace of large arguments stays a small page), and `full_url` links to the rest."""
    budget = _Budget(limit)
    tree = format_html('<div class="json" tabindex="0">{}</div>', _node(value, 0, budget))
    if budget.elided and full_url:
        tree += format_html('<p class="elided muted small">Shortened here. <a href="{}">Open the full event →</a></p>', full_url)
    return tree


@register.filter
def decision_class(decision):
    return escape(f"d-{decision}") if decision in ("allow", "deny", "alert") else ""


# `{% chain_status_badge seq %}`: an event's place in the tamper-evident chain, as judged by the
# last verification. Needs `org` in the context; the last verification is read once per page.
_LOOK = {
    "verified": ("o-success", "verified", "Recomputed and intact at the last chain verification ({when})."),
    "unverified": ("", "not yet verified", "Stored after the last chain verification, or none has run yet."),
    "broken": ("o-bad", "chain broken", "The last verification found the chain broken at seq {bad}, at or before this event."),
}
_CACHE_KEY = "audit.integrity.last_verification"


@register.simple_tag(takes_context=True)
def chain_status_badge(context, seq):
    org = context["org"]
    cache = context.render_context
    if _CACHE_KEY not in cache:
        cache[_CACHE_KEY] = integrity_selectors.chain_verification_last(org=org)
    status = integrity_selectors.chain_status(org=org, seq=seq, last=cache[_CACHE_KEY])
    css, label, title = _LOOK[status["state"]]
    return format_html(
        '<span class="badge chain-status chain-{} {}" title="{}">{} · seq {}</span>',
        status["state"], css, title.format(when=status["verified_at"], bad=status["first_bad_seq"]), label, status["seq"],
    )


@register.simple_tag
def copy_button(value, what):
    """A button that copies `value` whole (static/js: data-lens-copy)."""
    return format_html(
        '<button type="button" class="copy" data-lens-copy="{}" title="Copy the full {}" aria-label="Copy {}">Copy</button>',
        value, what, what,
    )


# The rows of the two list pages are drawn here, not in their templates: the template engine's
# lookup per variable made them a third of a page's CPU (50 event rows: 11.2 ms of CPU in the
# template, 4.6 ms here). Same markup as the templates had; every cell escaped by format_html
# and reveal, as there.
_EVENT_ROW = (
    '<tr class="{decision_class}" data-event-id="{event_id}">'
    '<td class="nowrap"><a href="{href}" title="{event_id} · {time}" data-lens-row-link>{time_short}</a></td>'
    '<td><a class="mono cell-clip" href="{href}">{call}</a><span class="cell-clip muted small show-sm">{actor_short}</span></td>'
    '<td class="hide-sm"><span class="cell-clip" title="{actor_title}">{actor}</span></td>'
    '<td class="hide-sm"><span class="mono">{slug}</span></td>'
    '<td><span class="badge {decision_class}">{decision}</span><span class="badge {outcome_class} show-sm">{outcome}</span></td>'
    '<td class="hide-sm"><span class="badge {outcome_class}">{outcome}</span>{status}</td>'
    '<td class="num hide-sm">{duration}</td>'
    '<td class="hide-md has-copy"><a class="mono cell-clip short" href="{trace_href}" title="Open trace {trace_title}">{trace}</a>'
    "{copy}</td>"
    "</tr>"
)
_ANONYMOUS = mark_safe('<span class="muted">anonymous</span>')


@register.simple_tag
def event_row(event):
    return format_html(
        _EVENT_ROW,
        decision_class=decision_class(event.decision),
        event_id=event.event_id,
        href=reverse("event-detail", args=[event.event_id]),
        time=utc(event.timestamp),
        time_short=utc_short(event.timestamp),
        call=reveal(event.tool or event.method),
        actor_short=reveal(event.actor) if event.actor else "anonymous",
        actor_title=reveal_text(event.actor or "anonymous"),
        actor=reveal(event.actor) if event.actor else _ANONYMOUS,
        slug=reveal(event.slug),
        decision=event.decision,
        outcome=event.outcome,
        outcome_class="o-success" if event.outcome == "success" else "o-bad",
        status=format_html(' <span class="muted small">{}</span>', event.status_code) if event.status_code else "",
        duration=duration(event.duration_ms),
        trace_href=trace_url(event.trace_id),
        trace_title=reveal_text(event.trace_id),
        trace=reveal(event.trace_id),
        copy=copy_button(event.trace_id, "trace id"),
    )


_TRACE_ROW = (
    '<tr class="{row_class}" data-trace-id="{trace_id}">'
    '<td class="nowrap"><a href="{href}" title="{time}">{time_short}</a></td>'
    '<td class="has-copy"><a class="mono cell-clip" href="{href}" title="{trace_title}">{trace}</a>{copy}</td>'
    '<td class="num">{calls}</td>'
    '<td class="num hide-sm">{span}</td>'
    '<td class="num hide-sm">{total}</td>'
    '<td class="hide-sm">{actors}</td>'
    '<td class="hide-sm">{slugs}</td>'
    '<td class="num">{denies}</td>'
    '<td class="num">{alerts}</td>'
    "</tr>"
)
_NONE = mark_safe('<span class="muted">—</span>')
_ZERO = mark_safe('<span class="muted">0</span>')


def _count_pill(count, kind):
    return format_html('<span class="count-pill {}">{}</span>', kind, count) if count else _ZERO


@register.simple_tag
def trace_row(trace):
    return format_html(
        _TRACE_ROW,
        row_class="d-deny" if trace.deny_count else "d-alert" if trace.alert_count else "",
        trace_id=trace.trace_id,
        href=trace_url(trace.trace_id),
        time=utc(trace.started_at),
        time_short=utc_short(trace.started_at),
        trace_title=reveal_text(trace.trace_id),
        trace=reveal(trace.trace_id),
        copy=copy_button(trace.trace_id, "trace id"),
        calls=trace.calls,
        span=duration(trace.span_ms) if trace.calls > 1 else _NONE,
        total=duration(trace.total_duration_ms),
        actors=format_html_join(
            "", '<span class="cell-clip">{}</span>', ((reveal(actor) if actor else _ANONYMOUS,) for actor in trace.actors)
        ),
        slugs=format_html_join("", '<span class="mono cell-clip">{}</span>', ((reveal(slug),) for slug in trace.slugs)),
        denies=_count_pill(trace.deny_count, "deny"),
        alerts=_count_pill(trace.alert_count, "alert"),
    )
