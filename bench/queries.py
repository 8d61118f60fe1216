"""Query latency: Lens's read path in-process (server-side) against the equivalent raw SQL.

Each Lens figure is the time of one request through Django's test client in this
process (URL routing, auth, middleware, selectors, serialization, rendering) with
the run's production settings (DEBUG off) against the same database the gunicorn
server uses; the raw figure is the hand-written SQL a DBA would run for the same
answer, executed and fetched with psycopg. No HTTP on either side.
"""

import inspect
import json
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.test import Client
from django.urls import Resolver404, resolve

WIRE_SQL = (
    "event_id, timestamp, trace_id, actor, slug, method, tool, arguments, decision, rule, reason, "
    "metadata, duration_ms, outcome, status_code, error, server, received_at, seq, chain_hash"
)
ACTOR = "alice@company.com"
METADATA = {"feature": "issue-triage", "env": "production"}
DECISION, SLUG = "deny", "github-prod"


@dataclass
class Case:
    name: str
    lens: list  # callables, cycled; each returns the response size
    raw: list  # statement groups, cycled: each a list of (sql, params) run one after another
    note: str = ""
    repetitions: int | None = None  # fewer than the run's for a case that takes seconds
    goal_ms: float | None = None  # the p95 goal, when not the default
    lens_samples: list = field(default_factory=list)
    raw_samples: list = field(default_factory=list)


FACETS = ("decision", "outcome", "actor", "slug", "tool", "method")  # vocabulary.FACETS


def facets_sql(where):
    """Every facet's top 10 values by exact count over all matching events (what Lens
    answers, from its rollup where it can), in one statement: GROUPING SETS over the events."""
    names = ", ".join(FACETS)
    return (
        f"SELECT * FROM (SELECT {names}, count(*) AS n, row_number() OVER (PARTITION BY grouping({names}) "
        f"ORDER BY count(*) DESC) AS r FROM audit_auditevent WHERE org_id = %s AND {where} "
        "GROUP BY GROUPING SETS (" + ", ".join(f"({name})" for name in FACETS) + ")) f WHERE r <= 10"
    )


def histogram_sql(where, seconds):
    """Exact counts per time bucket and decision over the matching events: what a DBA would run."""
    return (
        f"SELECT floor(extract(epoch FROM timestamp) / {seconds}) AS b, decision, count(*) FROM audit_auditevent "
        f"WHERE org_id = %s AND {where} GROUP BY 1, 2 ORDER BY 1"
    )


def top_sql(column, where):
    return (
        f"SELECT {column}, count(*), count(*) FILTER (WHERE decision = 'deny'), "
        "count(*) FILTER (WHERE decision = 'alert'), avg(duration_ms), max(duration_ms) FROM audit_auditevent "
        f"WHERE org_id = %s AND {where} GROUP BY 1 ORDER BY 2 DESC LIMIT 10"
    )


def _count_cases(api, org_id):
    """Histograms and top-N (SPEC §8) beside the exact GROUP BY over events."""
    since = "timestamp >= now() - interval '24 hours'"
    rows = [
        ("histogram API, every event `?interval=1d`", "/api/v1/audit-events/histogram?interval=1d",
         histogram_sql("true", 86400), []),
        ("histogram API, last 24 h `?since=24h`", "/api/v1/audit-events/histogram?since=24h",
         histogram_sql(since, 900), []),
        ("histogram API, a query (counted over events) `?q=tool:delete_*&interval=1d`",
         "/api/v1/audit-events/histogram?q=tool%3Adelete_*&interval=1d",
         histogram_sql("lower(tool) LIKE %s", 86400), ["delete\\_%"]),
        ("top-N API `/api/v1/stats/top?by=actor`", "/api/v1/stats/top?by=actor", top_sql("actor", "true"), []),
        ("top-N API, denied tools, last 24 h `?by=tool&decision=deny&since=24h`",
         "/api/v1/stats/top?by=tool&decision=deny&since=24h", top_sql("tool", f"decision = 'deny' AND {since}"), []),
        ("top-N API by a metadata key (counted over events) `?by=metadata.feature`",
         "/api/v1/stats/top?by=metadata.feature", top_sql("metadata->>'feature'", "true"), []),
    ]
    return [
        Case(name, [_getter(api, path)], [[(sql, [org_id, *params])]])
        for name, path, sql, params in rows
        if _exists(path.split("?")[0], None)
    ]


def _p95(samples):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summarize(samples):
    return {"median_ms": statistics.median(samples) * 1000, "p95_ms": _p95(samples) * 1000}


def _exists(path, client=None):
    """The route exists and (when a client is given) answers GET with something other than 404/405."""
    try:
        resolve(path.split("?")[0])
    except Resolver404:
        return False
    return client is None or client.get(path).status_code not in (404, 405)


def _getter(client, path, **headers):
    def get():
        response = client.get(path, **headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {response.content[:300]!r}")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return len(body)

    return get


def build_cases(*, org, read_key, user, trace_ids, conn):
    api = Client(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    browser = Client()
    browser.force_login(user)
    org_id = org.pk
    page_size = _api_page_size(api)

    def events_sql(where, params):
        return (
            f"SELECT {WIRE_SQL} FROM audit_auditevent WHERE org_id = %s AND {where} "
            f"ORDER BY timestamp DESC, id DESC LIMIT {page_size + 1}",
            [org_id, *params],
        )

    chain_raw = [
        [(
            "SELECT s.*, e.* FROM audit_tracesummary s JOIN LATERAL (SELECT " + WIRE_SQL + " FROM audit_auditevent "
            "WHERE org_id = s.org_id AND trace_id = s.trace_id ORDER BY timestamp, id) e ON true "
            "WHERE s.org_id = %s AND s.trace_id = %s",
            [org_id, trace_id],
        )]
        for trace_id in trace_ids
    ]


    filters = {
        "actor": ({"actor": ACTOR}, "actor = %s", [ACTOR]),
        "metadata": ({f"metadata.{k}": v for k, v in METADATA.items()}, "metadata @> %s::jsonb", [json.dumps(METADATA)]),
        "decision+slug": ({"decision": DECISION, "slug": SLUG}, "decision = %s AND slug = %s", [DECISION, SLUG]),
    }
    filters.update(_search_filters(conn, org_id))
    traces_raw = (
        f"SELECT * FROM audit_tracesummary WHERE org_id = %s ORDER BY started_at DESC, id DESC LIMIT {page_size + 1}",
        [org_id],
    )

    cases = []
    chain_paths = [f"/api/v1/traces/{t}" for t in trace_ids]
    if _exists(chain_paths[0], api):
        cases.append(Case("trace chain API `/api/v1/traces/<id>`", [_getter(api, p) for p in chain_paths], chain_raw))
    page_paths = [f"/traces/{t}/" for t in trace_ids]
    if _exists(page_paths[0], browser):
        cases.append(Case("trace chain page `/traces/<id>/`", [_getter(browser, p) for p in page_paths], chain_raw))
    for label, (params, where, values) in filters.items():
        query = urlencode(params)
        listing = events_sql(where, values)
        if _exists(f"/api/v1/audit-events?{query}", api):
            cases.append(Case(f"events API by {label} `?{query}`", [_getter(api, f"/api/v1/audit-events?{query}")], [[listing]]))
        if _exists(f"/events/?{query}", browser):
            # The page shows the list and the facet counts of the matching events.
            raw = [[listing, (facets_sql(where), [org_id, *values])]]
            cases.append(
                Case(f"events page by {label} `/events/?{query}`", [_getter(browser, f"/events/?{query}")], raw, note="list + facets")
            )
        fragment = f"/facets/metadata/?{query}&facet=feature"
        if label == "actor" and _exists(fragment, browser):
            # The page's metadata facet, which it fetches after it is shown: counted over every match.
            raw = [[(top_sql("metadata->>'feature'", where), [org_id, *values])]]
            cases.append(Case(f"the events page's metadata facet, fetched after it `{fragment}`", [_getter(browser, fragment)], raw))
    if _exists("/api/v1/traces", api):
        cases.append(Case("traces API `/api/v1/traces`", [_getter(api, "/api/v1/traces")], [[traces_raw]]))
    if _exists("/traces/", browser):
        cases.append(Case("traces page `/traces/`", [_getter(browser, "/traces/")], [[traces_raw]]))
    cases += _count_cases(api, org_id)
    facets = _facets_case(org=org, conn=conn)
    if facets is not None:
        cases.append(facets)
    if _exists("/api/v1/policy/simulate"):
        from bench.policy import policy_case

        cases.append(policy_case(api=api, org_id=org_id, case=Case))
    return cases, page_size


def _search_filters(conn, org_id):
    """Query-language rows (`q`): a selective word, a phrase, a wildcard qualifier, a negation.
    The raw side is the SQL a DBA would write over the same column and index."""
    row = conn.execute(
        "SELECT arguments->>'file_id' FROM audit_auditevent WHERE org_id = %s AND tool = 'share_file' "
        "ORDER BY id DESC LIMIT 1", [org_id],
    ).fetchone()
    word = row[0] if row else "f-123456"
    phrase = "upstream credential expired"
    return {
        "a selective word": ({"q": word}, "search_text LIKE %s", [f"%{word.lower()}%"]),
        "a phrase": ({"q": f'"{phrase}"'}, "search_text LIKE %s", [f"%{phrase}%"]),
        "a wildcard qualifier": ({"q": "tool:delete_*"}, "lower(tool) LIKE %s", ["delete\\_%"]),
        "a negation": (
            {"q": "decision:deny -metadata.env:staging"}, "decision = %s AND NOT metadata @> %s::jsonb",
            ["deny", json.dumps({"env": "staging"})],
        ),
    }


def _api_page_size(api):
    response = api.get("/api/v1/audit-events") if _exists("/api/v1/audit-events") else None
    if response is None or response.status_code != 200:
        return 50
    data = response.json()
    results = data.get("results", data) if isinstance(data, dict) else data
    return max(len(results), 1)


def _facets_case(*, org, conn):
    try:
        from audit.explore import selectors
    except ImportError:
        return None
    facets = getattr(selectors, "event_facets", None)
    if facets is None:
        return None
    kwargs = {"org": org}
    if "filters" in inspect.signature(facets).parameters:
        kwargs["filters"] = {}

    def call():
        return len(str(facets(**kwargs)))

    return Case(
        "facet counts `selectors.event_facets` (no filter)",
        [call],
        [[(facets_sql("true"), [org.pk])]],
        note="a Python call, not a request",
    )


def _run_raw(conn, group):
    for sql, params in group:
        conn.execute(sql, params).fetchall()


def run_cases(*, cases, conn, repetitions, warmup=2):
    for case in cases:
        for i in range(1 if case.repetitions else warmup):
            case.lens[i % len(case.lens)]()
            _run_raw(conn, case.raw[i % len(case.raw)])
        for i in range(case.repetitions or repetitions):
            start = time.perf_counter()
            case.lens[i % len(case.lens)]()
            case.lens_samples.append(time.perf_counter() - start)
            start = time.perf_counter()
            _run_raw(conn, case.raw[i % len(case.raw)])
            case.raw_samples.append(time.perf_counter() - start)
    return cases
