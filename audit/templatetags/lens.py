"""Template helpers for the explorer. Every piece of event content passes through
format_html/escape here: nothing from an event is ever marked safe unescaped."""

import json
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


def _scalar(value) -> SafeString:
    text = json.dumps(value, ensure_ascii=False)
    kind = "null" if value is None else "bool" if isinstance(value, bool) else "num" if isinstance(value, (int, float)) else "str"
    if kind == "str" and (len(value) > FOLD_AT or "\n" in value):
        return format_html(
            '<details class="fold"><summary><span class="j-str">{}</span> <span class="muted">({} chars)</span></summary>'
            '<span class="j-str j-full">{}</span></details>',
            json.dumps(value[:60].split("\n")[0] + "…", ensure_ascii=False),
            len(value),
            value,
        )
    return format_html('<span class="j-{}">{}</span>', kind, text)


def _node(value, depth) -> SafeString:
    pad = "  " * (depth + 1)
    end_pad = "  " * depth
    if isinstance(value, dict):
        if not value:
            return mark_safe("{}")
        body = format_html_join(
            ",\n",
            "{}<span class=\"j-key\">{}</span>: {}",
            ((pad, json.dumps(str(key), ensure_ascii=False), _node(item, depth + 1)) for key, item in value.items()),
        )
        opening, closing, count = "{", "}", len(value)
    elif isinstance(value, list):
        if not value:
            return mark_safe("[]")
        body = format_html_join(",\n", "{}{}", ((pad, _node(item, depth + 1)) for item in value))
        opening, closing, count = "[", "]", len(value)
    else:
        return _scalar(value)
    if depth > 0 and count > FOLD_ITEMS:
        return format_html(
            '<details class="fold"><summary>{} <span class="muted">{} items</span> {}</summary>{}\n{}{}</details>',
            opening, count, closing, body, end_pad, closing,
        )
    return format_html("{}\n{}\n{}{}", opening, body, end_pad, closing)


@register.simple_tag
def json_tree(value):
    """Pretty-printed JSON as escaped HTML, with long strings and big collections folded."""
    return format_html('<div class="json" tabindex="0">{}</div>', _node(value, 0))


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
