"""The policy what-if at scale: a realistic 20-rule draft replayed over every stored call.

The draft tightens the demo's rules (audit/events/demo.py): admins may still delete,
everyone else may not; merges in production alert, and deny for the nightly service
account; public shares and production reads of the users table are denied; anonymous
production calls are denied; reads are allowed by name; the default is deny. It uses
every kind of condition: tool, actor and slug globs, metadata strings and numbers,
nested argument globs and null.

Raw: the same CASE written by hand as a DBA would, grouped by recorded decision and
rule: the in-database evaluation without Lens's flips, actors, tools and samples.
"""

import json

RULES = [
    ("r-admin-del", "delete_*", "allow", {"actor": "admin@company.com"}),
    ("r-del", "delete_*", "deny", {}),
    ("r-merge-nightly", "merge_*", "deny", {"metadata.env": "production", "actor": "svc-nightly@*"}),
    ("r-merge", "merge_*", "alert", {"metadata.env": "production"}),
    ("r-share-public", "share_file", "deny", {"arguments.visibility": "public"}),
    ("r-share-security", "share_file", "alert", {"metadata.team": "security"}),
    ("r-sql-users", "run_query", "deny", {"arguments.query": "*FROM users*", "metadata.env": "production"}),
    ("r-sql-select", "run_query", "alert", {"arguments.query": "SELECT *"}),
    ("r-jira", "transition_*", "alert", {}),
    ("r-anon-create", "create_*", "deny", {"actor": None}),
    ("r-anon-prod", "*", "deny", {"actor": None, "metadata.env": "production"}),
    ("r-incidents", "post_message", "alert", {"arguments.channel": "#incidents"}),
    ("r-ticket", "create_ticket", "alert", {"metadata.ticket": 4711}),
    ("r-staging-read", "read_file", "deny", {"metadata.env": "staging"}),
    ("r-list", "list_*", "allow", {}),
    ("r-get", "get_*", "allow", {}),
    ("r-search", "search_*", "allow", {}),
    ("r-describe", "describe_table", "allow", {}),
    ("r-data-audit", "*", "alert", {"metadata.feature": "data-audit"}),
    ("r-prod", "*", "allow", {"slug": "*-prod"}),
]
POLICY = {
    "name": "tightened-guardrails",
    "default": "deny",
    "rules": [{"id": i, "tool": t, "action": a, "conditions": c} for i, t, a, c in RULES],
}

RAW_SQL = """
SELECT decision, CASE
  WHEN tool LIKE 'delete\\_%%' AND actor = 'admin@company.com' THEN 0
  WHEN tool LIKE 'delete\\_%%' THEN 1
  WHEN tool LIKE 'merge\\_%%' AND metadata->>'env' = 'production' AND actor LIKE 'svc-nightly@%%' THEN 2
  WHEN tool LIKE 'merge\\_%%' AND metadata->>'env' = 'production' THEN 3
  WHEN tool = 'share_file' AND arguments->>'visibility' = 'public' THEN 4
  WHEN tool = 'share_file' AND metadata->>'team' = 'security' THEN 5
  WHEN tool = 'run_query' AND arguments->>'query' LIKE '%%FROM users%%' AND metadata->>'env' = 'production' THEN 6
  WHEN tool = 'run_query' AND arguments->>'query' LIKE 'SELECT %%' THEN 7
  WHEN tool LIKE 'transition\\_%%' THEN 8
  WHEN tool LIKE 'create\\_%%' AND actor IS NULL THEN 9
  WHEN actor IS NULL AND metadata->>'env' = 'production' THEN 10
  WHEN tool = 'post_message' AND arguments->>'channel' = '#incidents' THEN 11
  WHEN tool = 'create_ticket' AND metadata->'ticket' = '4711' THEN 12
  WHEN tool = 'read_file' AND metadata->>'env' = 'staging' THEN 13
  WHEN tool LIKE 'list\\_%%' THEN 14
  WHEN tool LIKE 'get\\_%%' THEN 15
  WHEN tool LIKE 'search\\_%%' THEN 16
  WHEN tool = 'describe_table' THEN 17
  WHEN metadata->>'feature' = 'data-audit' THEN 18
  WHEN slug LIKE '%%-prod' THEN 19
  ELSE -1 END, count(*)
FROM audit_auditevent WHERE org_id = %s AND method = 'tools/call' GROUP BY 1, 2
"""


PATH = "/api/v1/policy/simulate"
GOAL_MS = 5000  # a 20-rule policy over 1M calls
REPETITIONS = 5


def policy_case(*, api, org_id, case):
    """The bench case: POST the draft with no query (every stored call), against RAW_SQL."""
    body = json.dumps({"policy": POLICY, "query": ""})

    def post():
        response = api.post(PATH, data=body, content_type="application/json")
        if response.status_code != 200:
            raise RuntimeError(f"POST {PATH} answered {response.status_code}: {response.content[:300]!r}")
        return len(response.content)

    answer = api.post(PATH, data=body, content_type="application/json").json()
    note = (
        f"{len(RULES)} rules over {answer.get('evaluated', 0):,} calls ({answer.get('changed', 0):,} flips), "
        f"evaluated in the {answer.get('evaluated_in')}; raw: the CASE grouped by decision and rule only"
    )
    return case(f"policy what-if `POST {PATH}`", [post], [[(RAW_SQL, [org_id])]], note=note,
                repetitions=REPETITIONS, goal_ms=GOAL_MS)
