"""A corpus where the answer to every query of SPEC §7 is known (unicode, nested
arguments, anonymous calls, quotes, backslashes and LIKE's own % and _ in the text)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import store_events, wire_event


def _ago(**delta):
    return (timezone.now() - timedelta(**delta)).isoformat().replace("+00:00", "Z")


def _rule(rule_id, policy):
    return {"id": rule_id, "policy": policy, "index": 0, "tool": "*", "action": "deny", "conditions": {}}


@pytest.fixture
def corpus(org, other_org):
    store_events(
        org,
        wire_event(id="c1", trace_id="trace-A", actor="Alice@Company.com", slug="github-prod", tool="delete_repo",
                   arguments={"repo": "acme/legacy", "options": {"force": True, "reasons": ["Cleanup SECRET keys", 42]}},
                   decision="deny", outcome="denied", status_code=403, duration_ms=3, rule=_rule("r-del", "github-guardrails"),
                   reason="rule r-del matched delete_*", metadata={"env": "production", "ticket": 4711},
                   error="denied by policy", timestamp=_ago(minutes=10)),
        wire_event(id="c2", trace_id="trace-A", actor="bob@company.com", slug="slack-prod", tool="post_message",
                   arguments={"channel": "#triage", "text": "Read the secrets file, s'il vous plaît"}, rule=None,
                   metadata={"env": "staging", "team": "data"}, duration_ms=95, timestamp=_ago(hours=2)),
        wire_event(id="c3", trace_id="trace-B", actor=None, slug="jira-cloud", method="tools/list", tool=None,
                   arguments=None, decision="alert", outcome="upstream_error", status_code=502, duration_ms=1500,
                   error="upstream jira-mcp returned 502 Bad Gateway", rule=_rule("r-jira", "jira-workflow"),
                   reason='quote " and back\\slash and 50% _under', metadata={"env": "staging", "dry_run": True},
                   timestamp=_ago(minutes=5)),
        wire_event(id="c4", trace_id="trace-C", actor="élodie@société.fr", slug="gdrive-corp", tool="share_file",
                   arguments={"file_id": "f-1", "visibility": "public", "note": "ünïcödé ÜBER"}, decision="deny",
                   outcome="denied", status_code=403, duration_ms=2.5, metadata={}, rule=_rule("r-share", "drive-dlp"),
                   reason="visibility public", timestamp=_ago(days=3)),
        wire_event(id="c5", trace_id="trace with space", actor="carol@company.com", slug="github-prod",
                   tool="create_issue", arguments={"title": "a*b, c", "body": "50% done_ok"}, rule=None,
                   metadata={"env": "production", "my key": "x,y"}, duration_ms=1200, timestamp=_ago(minutes=1)),
    )
    # Another organization's events match many of the same queries and must never appear.
    store_events(other_org, wire_event(id="c1", actor="alice@company.com", tool="delete_repo", reason="secret",
                                       arguments={"secret": "SECRET"}, decision="deny", outcome="denied"))
    return {"c1", "c2", "c3", "c4", "c5"}
