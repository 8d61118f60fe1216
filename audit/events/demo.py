"""Realistic gateway traffic for demos, tests and the benchmark (wire-format dicts).

Users run agent jobs (traces of 1–8 calls) across several connections. Policies
allow most calls, deny some by rule or by default, raise alerts on sensitive ones;
some calls hit rate limits or failing upstreams; sessions start with `initialize`
and `tools/list`.
"""

import random
from datetime import UTC, datetime, timedelta

USERS = [
    "alice@company.com",
    "bob@company.com",
    "carol@company.com",
    "dan@company.com",
    "erin@company.com",
    "svc-nightly@company.com",
    None,  # anonymous
]
CONNECTIONS = {
    "github-prod": ("github-mcp", ["list_issues", "create_issue", "get_pull_request", "merge_pull_request", "delete_repo"]),
    "slack-prod": ("slack-mcp", ["post_message", "list_channels", "search_messages"]),
    "postgres-analytics": ("postgres-mcp", ["run_query", "list_tables", "describe_table"]),
    "jira-cloud": ("jira-mcp", ["search_issues", "create_ticket", "transition_ticket"]),
    "gdrive-corp": ("gdrive-mcp", ["search_files", "read_file", "share_file"]),
}
FEATURES = ["issue-triage", "release-notes", "incident-digest", "weekly-report", "data-audit"]
ENVS = ["production", "production", "production", "staging"]
TEAMS = ["platform", "growth", "security", "data"]

# Rules that deny or alert, by tool: (rule id, policy, index, pattern, action, conditions).
RULES = {
    "delete_repo": ("r-del", "github-guardrails", 2, "delete_*", "deny", {"user": {"not_in": ["admin@company.com"]}}),
    "merge_pull_request": ("r-merge", "github-guardrails", 1, "merge_*", "alert", {"metadata.env": "production"}),
    "share_file": ("r-share", "drive-dlp", 0, "share_file", "deny", {"arguments.visibility": "public"}),
    "run_query": ("r-sql", "warehouse-access", 3, "run_query", "alert", {"arguments.query": {"matches": "(?i)select \\*"}}),
    "transition_ticket": ("r-jira", "jira-workflow", 0, "transition_*", "alert", {}),
}
ALLOW_RULE = {
    slug: ("r-allow-" + slug.split("-")[0], slug.split("-")[0] + "-guardrails", 0, "*", "allow", {})
    for slug in CONNECTIONS
}


def _rule(spec):
    rule_id, policy, index, tool, action, conditions = spec
    return {"id": rule_id, "policy": policy, "index": index, "tool": tool, "action": action, "conditions": conditions}


def _arguments(rng, tool):
    return {
        "list_issues": lambda: {"repo": "acme/igris", "state": rng.choice(["open", "closed"]), "limit": rng.choice([10, 50])},
        "create_issue": lambda: {"repo": "acme/igris", "title": "Migration plan for v2", "body": "Initial draft."},
        "post_message": lambda: {"channel": rng.choice(["#triage", "#releases", "#incidents"]), "text": "Top 3 issues this week …"},
        "run_query": lambda: {"query": rng.choice(["SELECT count(*) FROM orders", "SELECT * FROM users LIMIT 100"])},
        "share_file": lambda: {"file_id": f"f-{rng.randrange(10**6)}", "visibility": rng.choice(["team", "public"])},
        "delete_repo": lambda: {"repo": "acme/legacy"},
    }.get(tool, lambda: {"id": rng.randrange(1, 5000)})()


def _call(rng, *, n, trace, at, actor, slug, method, tool, metadata, run_id):
    event = {
        "id": f"demo-{run_id}-{n:08d}",
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "trace_id": trace,
        "actor": actor,
        "slug": slug,
        "method": method,
        "decision": "allow",
        "rule": None,
        "metadata": metadata,
        "duration_ms": round(rng.lognormvariate(4.5, 0.8), 1),
        "outcome": "success",
        "status_code": 200,
    }
    if method == "initialize":
        server_name = CONNECTIONS[slug][0]
        event["server"] = {"name": server_name, "version": rng.choice(["1.2.0", "1.3.1", "2.0.0"])}
        return event
    if method == "tools/list":
        return event
    event["tool"] = tool
    event["arguments"] = _arguments(rng, tool)
    roll = rng.random()
    spec = RULES.get(tool)
    if spec and (spec[4] == "alert" or roll < 0.7):
        event["rule"] = _rule(spec)
        event["decision"] = spec[4]
        event["reason"] = f"rule {spec[0]} of {spec[1]} matched {spec[3]}"
    elif roll < 0.04:
        event.update(decision="deny", reason="no rule matched: denied by default")
    elif rng.random() < 0.85:
        event["rule"] = _rule(ALLOW_RULE[slug])
    if event["decision"] == "deny":
        event.update(outcome="denied", status_code=403, error="denied by policy", duration_ms=round(rng.uniform(1, 4), 1))
    elif roll > 0.975:
        event.update(outcome="rate_limited", status_code=429, error="rate limit exceeded: 60 calls/min")
    elif roll > 0.955:
        event.update(outcome="upstream_error", status_code=502, error=f"upstream {CONNECTIONS[slug][0]} returned 502 Bad Gateway")
    elif roll > 0.95:
        event.update(outcome="auth_failed", status_code=401, error="upstream credential expired")
    return event


def demo_events(*, count: int, seed: int = 7, end: datetime | None = None, days: float = 7):
    """Yield `count` events, traces spread over the `days` before `end` (default now)."""
    rng = random.Random(seed)
    end = end or datetime.now(UTC)
    run_id = f"{seed}-{end:%Y%m%d%H%M}"
    span = timedelta(days=days).total_seconds()
    n = 0
    while n < count:
        actor = rng.choice(USERS)
        slugs = rng.sample(list(CONNECTIONS), k=rng.choice([1, 1, 2, 2, 3]))
        metadata = {"feature": rng.choice(FEATURES), "env": rng.choice(ENVS)}
        if rng.random() < 0.5:
            metadata["team"] = rng.choice(TEAMS)
        if rng.random() < 0.3:
            metadata["ticket"] = rng.randrange(1000, 9999)
        trace = f"trace-{rng.getrandbits(48):012x}"
        at = end - timedelta(seconds=rng.uniform(60, span))
        calls = []
        if rng.random() < 0.2:
            calls += [(slugs[0], "initialize", None), (slugs[0], "tools/list", None)]
        for _ in range(rng.randint(1, 6)):
            slug = rng.choice(slugs)
            calls.append((slug, "tools/call", rng.choice(CONNECTIONS[slug][1])))
        for slug, method, tool in calls[:8]:
            if n >= count:
                return
            n += 1
            event = _call(rng, n=n, trace=trace, at=at, actor=actor, slug=slug, method=method, tool=tool, metadata=metadata, run_id=run_id)
            yield event
            at += timedelta(milliseconds=event["duration_ms"] + rng.uniform(5, 1500))


def demo_batches(*, count: int, seed: int = 7, batch_size: int = 1000, end: datetime | None = None):
    batch = []
    for event in demo_events(count=count, seed=seed, end=end):
        batch.append(event)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
