"""The explorer in the browser (SPEC §4): thin views over the shared FilterSet and selectors.

Every page is scoped to the logged-in user's organization. The URL is the whole
state: the filter form submits with GET, and a submission is redirected once to its
canonical URL (empty fields dropped, the "add metadata" pair folded into
`metadata.<key>=<value>`), so what is in the address bar is what can be shared.
"""

import functools
from datetime import timedelta

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, QueryDict
from django.shortcuts import render

from audit.accounts.access_log import access_record
from audit.accounts.caller import request_caller
from audit.events.models import AuditEvent, Decision, Outcome
from audit.explore import counts, selectors
from audit.explore.filters import EventFilterSet, filterset_bind, metadata_key_error
from audit.explore.pagination import CURSOR_PARAM, BadPage, keyset_page
from audit.explore.suggestions import EMPTY_SUGGESTIONS, filter_suggestions, metadata_value_text
from audit.explore.timeline import timeline_build
from audit.explore.saved_views import saved_view_is_own, saved_view_list
from audit.explore.vocabulary import (
    METADATA_PARAM, METADATA_PREFIX, PANEL_TEXT, ParameterError, filter_params, is_filter_param,
)
from audit.ingest.selectors import conflict_list
from audit.ingest.redaction import redacted_paths
from audit.web.charts import chart_context
from audit.web.search import (
    FACET_KEY_PARAM, facets_build, metadata_facet_build, metadata_facet_later, syntax_card,
)

PAGE_SIZE = 50
CHAIN_ELIDE_CHARS = 2000  # of one call's arguments, error or reason drawn in a trace's chain
HALF_PAIR_KEYS = ("meta_key", "meta_value")
PAGE_PARAMS = (CURSOR_PARAM, FACET_KEY_PARAM, *HALF_PAIR_KEYS)  # in the URL, but no filters
TIME_PRESETS = (("15m", "15 min"), ("1h", "1 h"), ("24h", "24 h"), ("7d", "7 days"), ("", "Any time"))


def org_view(view):
    """Login required; the view receives the user's organization (one query, joined)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        org = request_caller(request).org
        if org is None:
            # A login that belongs to no organization sees nothing, not someone else's data.
            raise Http404("This login is not a member of any organization.")
        return view(request, org, *args, **kwargs)

    return wrapper


def _canonical_query(query: QueryDict) -> QueryDict:
    """Drop empty values; fold meta_key/meta_value into metadata.<key>."""
    clean = QueryDict(mutable=True)
    for key, values in query.lists():
        if key in ("meta_key", "meta_value"):
            continue
        kept = [value for value in values if value != ""]
        if kept:
            clean.setlist(key, list(dict.fromkeys(kept)))
    # metadata=<key>=<value> (the API's pairs form) reads as metadata.<key>=<value> in the page's URL;
    # a value that is not a pair stays, so the page can say what is wrong.
    pairs = clean.pop(METADATA_PARAM, [])
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if equals and key and value:
            param = METADATA_PREFIX + key
            clean.setlist(param, list(dict.fromkeys([*clean.getlist(param), value])))
        else:
            clean.appendlist(METADATA_PARAM, pair)
    meta_key = query.get("meta_key", "").strip()
    meta_value = query.get("meta_value", "").strip()
    if meta_key and meta_value:
        param = METADATA_PREFIX + meta_key
        clean.setlist(param, list(dict.fromkeys([*clean.getlist(param), meta_value])))
    elif meta_key or meta_value:
        # Half a pair is kept in the URL so the page can say what is missing.
        clean.update({"meta_key": meta_key} if meta_key else {"meta_value": meta_value})
    return clean


def _redirect_if_not_canonical(request):
    canonical = _canonical_query(request.GET)
    if canonical.urlencode() != request.GET.urlencode():
        return HttpResponseRedirect(f"{request.path}?{canonical.urlencode()}" if canonical else request.path)
    return None


def _query(key: str, value: str) -> QueryDict:
    query = QueryDict(mutable=True)
    query[key] = value
    return query


def _filter_params(query: QueryDict) -> QueryDict:
    params = query.copy()
    for key in PAGE_PARAMS:
        params.pop(key, None)
    return params


def _half_pair_errors(query: QueryDict) -> dict:
    if "meta_key" in query:
        return {"metadata": [f"give a value for metadata key {query['meta_key']!r}"]}
    if "meta_value" in query:
        return {"metadata": [f"give a key for metadata value {query['meta_value']!r}"]}
    return {}


def _unknown_param_errors(query: QueryDict) -> dict:
    """A parameter that is no filter (a typo, say) is reported, never silently ignored."""
    return {name: ["is not a filter"] for name in query if name not in PAGE_PARAMS and not is_filter_param(name)}


def _errors(errors: dict) -> dict:
    """Filter errors keyed by control: metadata.<key> errors gather under the metadata chips."""
    grouped = {}
    for name, messages in errors.items():
        key = "metadata" if name.startswith(METADATA_PREFIX) else "filter" if name == "__all__" else name
        grouped.setdefault(key, []).extend(f"{name[len(METADATA_PREFIX):]}: {m}" if key == "metadata" else m for m in messages)
    return grouped


def _saved_views(request, params: QueryDict) -> list[dict]:
    caller = request_caller(request)
    current = params.urlencode()
    return [
        {"view": view, "own": saved_view_is_own(view, caller=caller), "current": view.query == current}
        for view in saved_view_list(caller=caller)
    ]


def _panel_context(*, org, params: QueryDict, errors: dict, action: str) -> dict:
    """The filter panel. Its suggestions are the organization's own values, so they are
    offered only with a page whose read is recorded: not on a 400."""
    metadata_filters = [
        (key[len(METADATA_PREFIX):], value, key)
        for key, values in params.lists()
        if key.startswith(METADATA_PREFIX)
        for value in values
    ]
    active = [(key, value) for key, values in params.lists() for value in values]
    suggestions = EMPTY_SUGGESTIONS if errors else filter_suggestions(org=org)
    return {
        "params": params,
        "errors": errors,
        "filter_action": action,
        "suggestions": suggestions,
        "decisions": Decision.values,
        "outcomes": Outcome.values,
        "time_presets": TIME_PRESETS,
        "form_values": {
            "q": params.get("q", ""),
            "since": params.get("since", ""),
            "until": params.get("until", ""),
            "decision": params.getlist("decision"),
            "outcome": params.getlist("outcome"),
        },
        "text_fields": [
            {
                "name": term.name,
                "label": term.label,
                "values": params.getlist(term.name) or [""],
                "errors": errors.get(term.name, []),
                "suggestions": suggestions.values.get(term.name, []),
            }
            for term in PANEL_TEXT
        ],
        "metadata_filters": metadata_filters,
        "active_filters": active,
        "syntax": syntax_card(),
    }


def _page(request, org, queryset, *, time_field):
    return keyset_page(
        queryset=queryset, time_field=time_field, size=PAGE_SIZE, org_id=org.pk, cursor=request.GET.get(CURSOR_PARAM)
    )


def _record(request, action, target=""):
    access_record(request=request, action=action, target=target, filters=filter_params(request.GET))


def _browse(request, org, *, template: str, nav: str, rows):
    """The two list pages: canonical URL, filter errors shown (never ignored), a keyset page."""
    redirect = _redirect_if_not_canonical(request)
    if redirect:
        return redirect
    params = _filter_params(request.GET)
    errors = {**_unknown_param_errors(request.GET), **_half_pair_errors(request.GET)}
    found = {}
    try:
        if errors:
            # Still report every other bad parameter at once, without running the query.
            filterset_bind(EventFilterSet, data=params, queryset=AuditEvent.objects.none())
        else:
            found = rows(params)
    except ParameterError as error:  # the filters' (FilterError) or another parameter's
        errors = {**_errors(error.errors), **errors}
    except BadPage as error:
        errors = {"page": [str(error)]}
    context = {
        "org": org, "nav": nav, **found, **_panel_context(org=org, params=params, errors=errors, action=request.path),
        "saved_views": _saved_views(request, params), "current_query": params.urlencode(),
    }
    return render(request, template, context, status=400 if errors else 200)


@org_view
def event_list(request, org):
    def rows(params):
        page = _page(request, org, selectors.event_list(org=org, filters=params), time_field="timestamp")
        chosen_key = request.GET.get(FACET_KEY_PARAM, "").strip()[:128] or None
        if chosen_key and (problem := metadata_key_error(chosen_key)):
            raise ParameterError.one(FACET_KEY_PARAM, problem)
        keys = filter_suggestions(org=org).metadata_keys
        counted = selectors.event_facets(org=org, filters=params, metadata_key=chosen_key)
        facets = facets_build(counts=counted.counts, params=params, chosen_key=chosen_key)
        later = None
        if chosen_key:
            facets.append(metadata_facet_build(
                items=counted.counts[METADATA_PREFIX + chosen_key], params=params, metadata_key=chosen_key,
                chosen_key=chosen_key, metadata_keys=keys,
            ))
        elif keys:
            later = metadata_facet_later(params=params, metadata_key=keys[0])
        _record(request, "event-list")
        total = sum(count for _, count in counted.counts["decision"])  # every match has one decision
        return {"page": page, "events": page.rows, "facets": facets, "metadata_facet_later": later, "total": total,
                **chart_context(params)}

    return _browse(request, org, template="audit/event_list.html", nav="events", rows=rows)


@org_view
def event_facet(request, org):
    """One metadata key's facet of the events page, as the page's HTML (fetched by the page
    after it is shown; see metadata_facet_later). Its read is recorded as the top-N API's."""
    key = request.GET.get(FACET_KEY_PARAM, "").strip()[:128]
    params = _filter_params(request.GET)
    try:
        errors = _unknown_param_errors(request.GET) or ({} if key else {FACET_KEY_PARAM: ["name a metadata key"]})
        if errors:
            raise ParameterError(errors)
        top = counts.event_top(org=org, by=METADATA_PREFIX + key, filters=params)
    except ParameterError as error:  # the page shows the filters' errors itself: this says why, briefly
        return render(request, "audit/partials/facet.html", {"error": str(error)}, status=400)
    _record(request, "stats-top")
    keys = filter_suggestions(org=org).metadata_keys
    facet = metadata_facet_build(items=[(row.value, row.count) for row in top.results], params=params,
                                 metadata_key=key, chosen_key=None, metadata_keys=keys)
    return render(request, "audit/partials/facet.html", {"facet": facet})


@org_view
def trace_list(request, org):
    def rows(params):
        page = _page(request, org, selectors.trace_list(org=org, filters=params), time_field="started_at")
        for trace in page.rows:
            trace.span_ms = (trace.ended_at - trace.started_at) / timedelta(milliseconds=1)
        _record(request, "trace-list")
        return {"page": page, "traces": page.rows}

    return _browse(request, org, template="audit/trace_list.html", nav="traces", rows=rows)


@org_view
def event_detail(request, org, event_id):
    event = selectors.event_get(org=org, event_id=event_id)
    _record(request, "event-view", event_id)
    metadata_rows = []
    for key, value in (event.metadata or {}).items():
        text = metadata_value_text(value)
        metadata_rows.append((key, text, _query(METADATA_PREFIX + key, text)))
    rule = event.rule if isinstance(event.rule, dict) else None
    index = rule.get("index") if rule else None
    context = {
        "org": org,
        "nav": "events",
        "event": event,
        "metadata_rows": metadata_rows,
        "rule_position": index if isinstance(index, int) and not isinstance(index, bool) else None,
        "redacted_paths": redacted_paths(arguments=event.arguments, metadata=event.metadata),
        "actor_params": _query("actor", event.actor or ""),
        "tool_params": _query("tool", event.tool or ""),
    }
    return render(request, "audit/event_detail.html", context)


@org_view
def trace_detail(request, org, trace_id):
    try:
        summary, page = selectors.trace_chain(org=org, trace_id=trace_id, cursor=request.GET.get(CURSOR_PARAM))
    except BadPage as error:
        return render(request, "400.html", {"org": org, "detail": str(error)}, status=400)
    events = page.rows
    _record(request, "trace-view", trace_id)
    timeline = timeline_build(events=events, first_position=page.before + 1)
    actors = list(dict.fromkeys(event.actor for event in events))
    context = {
        "org": org,
        "nav": "traces",
        "trace_id": trace_id,
        "timeline": timeline,
        "page": page,
        "shown_from": page.before + 1,
        "shown_to": page.before + len(events),
        # Large values are shortened in the chain; each call links to its full event.
        "elide_at": CHAIN_ELIDE_CHARS,
        "actors": actors,
        "summary": summary,
        "started_at": events[0].timestamp if events else summary.started_at,
        # From the summary: exact even when a very long trace shows only its first calls.
        "deny_count": summary.deny_count,
        "alert_count": summary.alert_count,
        # Calls let through that still failed (denials are counted above); the summary's
        # error_count includes denials, so this one is counted from the calls shown.
        "error_count": sum(event.outcome not in (Outcome.SUCCESS, Outcome.DENIED) for event in events),
        "trace_params": _query("trace_id", trace_id),
    }
    return render(request, "audit/trace_detail.html", context)


@org_view
def conflicts(request, org):
    """Events kept out because their id was taken by other content: for the organization's admins."""
    if not request_caller(request).is_admin:
        raise PermissionDenied("Conflicts are for your organization's admins.")
    try:
        page = _page(request, org, conflict_list(org_id=org.pk), time_field="detected_at")
    except BadPage as error:
        return render(request, "400.html", {"org": org, "detail": str(error)}, status=400)
    _record(request, "conflict-list")
    return render(request, "audit/conflicts.html", {"org": org, "nav": "conflicts", "page": page, "params": QueryDict()})
