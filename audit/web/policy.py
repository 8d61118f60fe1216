"""/policy/ (SPEC §14): write or paste a draft, pick the window, see what it would flip.

A plain form: GET shows the editor and the rule statistics of the window (and, with
`?start=<policy>`, fills the editor with that policy's rules from the trail); POST
(CSRF-protected, works without JavaScript) replays the draft over the window.
"""

import re

from django.http import QueryDict
from django.shortcuts import render
from django.urls import reverse

from audit.accounts.access_log import access_record
from audit.accounts.models import AccessRecord
from audit.events.fields import DECISIONS
from audit.explore.filters import FilterError
from audit.policy.drafts import policy_draft
from audit.policy.model import PolicyError, policy_load
from audit.policy.selectors import policy_simulate, rule_activity, trail_policy
from audit.web.views import org_view

WINDOW_FIELDS = ("since", "until", "q")
DEFAULT_SINCE = "7d"
SINCE_PRESETS = (("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("", "all time"))
_SIMPLE_ID = re.compile(r"^[A-Za-z0-9_.:@-]+$")  # a value a §7 term can carry unquoted


def _window(data) -> dict:
    window = {name: data.get(name, "").strip() for name in WINDOW_FIELDS}
    if "since" not in data:
        window["since"] = DEFAULT_SINCE
    return window


def events_href(window: dict, *, q_terms=(), **params) -> str:
    """/events/ for the window, narrowed by `params` (lists repeat) and extra §7 terms."""
    query = QueryDict(mutable=True)
    for name in ("since", "until"):
        if window[name]:
            query[name] = window[name]
    q = " ".join(term for term in (window["q"], *q_terms) if term)
    if q:
        query["q"] = q
    for name, value in params.items():
        query.setlist(name, value if isinstance(value, list) else [value])
    return reverse("event-list") + "?" + query.urlencode()


def _tool_filter(glob: str) -> tuple[tuple, dict]:
    """A tool glob as a filter: the exact `tool` parameter, or a §7 `tool:` term for a pattern."""
    if "*" not in glob:
        return (), {"tool": glob}
    return ((f"tool:{glob}",) if _SIMPLE_ID.match(glob.replace("*", "")) else ()), {}


def _result_context(simulation, policy, window) -> dict:
    rows = []
    for rule in simulation.by_rule:
        others = [d for d in DECISIONS if d != rule.action]
        terms, params = _tool_filter(rule.tool)
        rows.append({"rule": rule, "href": events_href(window, q_terms=terms, decision=others, **params)})
    default_others = [d for d in DECISIONS if d != policy.default]
    flipped_from = simulation.flipped_from
    return {
        "simulation": simulation,
        "policy": policy,
        "rule_rows": rows,
        "default_href": events_href(window, decision=default_others),
        "transitions": [
            {"from": key.split("->")[0], "to": key.split("->")[1], "count": count,
             "href": events_href(window, decision=key.split("->")[0])}
            for key, count in simulation.transitions.items() if count
        ],
        "actors": [
            {"actor": actor, "count": count, "href": events_href(window, actor=actor, decision=flipped_from) if actor else None}
            for actor, count in simulation.actors
        ],
        "tools": [
            {"tool": tool, "count": count, "href": events_href(window, tool=tool, decision=flipped_from)}
            for tool, count in simulation.tools
        ],
    }


def _activity_context(activity, window) -> dict:
    policies = {}
    for rule in activity:
        href = events_href(window, q_terms=(f"rule:{rule.id}",)) if isinstance(rule.id, str) and _SIMPLE_ID.match(rule.id) else None
        policies.setdefault(rule.policy, []).append({"rule": rule, "href": href})
    return {
        "activity": [{"name": name, "rules": rules} for name, rules in policies.items()],
        "stopped": [rule for rule in activity if rule.stopped],
        "trail_policies": [name for name in policies if isinstance(name, str)],
    }


@org_view
def policy_whatif(request, org):
    data = request.POST if request.method == "POST" else request.GET
    window = _window(data)
    text = request.POST.get("policy", "") if request.method == "POST" else ""
    window_errors, problems, context = {}, [], {}
    try:
        context.update(_activity_context(rule_activity(org=org, filters=window), window))
        start = request.GET.get("start", "")
        if request.method == "GET" and start:
            trail = trail_policy(org=org, filters=window, name=start)
            text = policy_draft(name=trail.name, rules=trail.rules, slugs=trail.slugs, default=trail.default)
            context["started_from"] = start
        if request.method == "POST":
            policy = policy_load(text)
            simulation = policy_simulate(org=org, policy=policy, filters=window)
            access_record(request=request, action=AccessRecord.Action.POLICY_SIMULATE,
                          filters={name: [value] for name, value in window.items() if value})
            context.update(_result_context(simulation, policy, window))
    except FilterError as error:
        window_errors = error.errors
    except PolicyError as error:
        problems = error.problems
    context.update({
        "org": org,
        "nav": "policy",
        "window": window,
        "since_presets": SINCE_PRESETS,
        "custom_since": window["since"] not in dict(SINCE_PRESETS),
        "policy_text": text,
        "window_errors": window_errors,
        "problems": problems,
    })
    return render(request, "audit/policy.html", context, status=400 if window_errors or problems else 200)
