"""/policy/: the draft editor, the replay as a plain form POST, starting from the trail,
rule statistics; escaped, one organization, bounded queries."""

import re
from datetime import timedelta
from html import unescape

import pytest
import yaml
from django.db import connection
from django.test import Client

from audit.policy.model import policy_load
from tests.factories import BASE_TIME, store_events, wire_event

HOSTILE = "<script>window.__lensPwned=1</script>"
DRAFT = """
name: github-guardrails
default: allow
rules:
  - id: r-del
    tool: delete_*
    action: deny
  - id: r-prod
    tool: "*"
    action: alert
    conditions:
      metadata.env: production
"""


def _at(seconds):
    return (BASE_TIME + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _rule(rule_id, index, tool="*", action="deny", policy="github-guardrails", conditions=None):
    return {"id": rule_id, "policy": policy, "index": index, "tool": tool, "action": action, "conditions": conditions or {}}


@pytest.fixture
def trail(org, other_org):
    store_events(
        org,
        wire_event(id="old", timestamp=_at(-86_400 * 30), rule=_rule("r-retired", 4), decision="deny"),
        wire_event(id="e1", timestamp=_at(1), tool="delete_repo", rule=_rule("r-allow", 0, action="allow"), decision="allow",
                   metadata={"env": "staging"}),
        wire_event(id="e2", timestamp=_at(2), tool="list_issues", actor=HOSTILE, decision="allow", metadata={"env": "production"},
                   rule=None),
        wire_event(id="e3", timestamp=_at(3), tool="merge_pull_request", actor=HOSTILE, decision="alert",
                   rule=_rule("r-merge", 1, tool="merge_*", action="alert", conditions={"metadata.env": "production",
                                                                                     "user": {"not_in": [HOSTILE]}}),
                   metadata={"env": "production"}),
        wire_event(id="e4", timestamp=_at(4), method="initialize", tool=None, arguments=None, decision="deny", rule=None),
    )
    store_events(other_org, wire_event(id="x1", timestamp=_at(5), tool="delete_repo", actor="mallory@globex.com",
                                       rule=_rule("r-secret", 0, policy="globex-secret"), decision="allow"))
    return org


def _post(client, text, **window):
    return client.post("/policy/", {"policy": text, "since": "", "until": "", "q": "", **window})


def test_the_page_needs_a_login_and_an_organization(client, db):
    assert client.get("/policy/").status_code == 302
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("loner", password="loner-pass-123"))
    assert client.get("/policy/").status_code == 404


def test_the_nav_links_the_page(user_client, trail):
    html = user_client.get("/events/").content.decode()
    assert 'href="/policy/"' in html
    assert 'href="/policy/" aria-current="page"' in user_client.get("/policy/").content.decode()


def test_a_draft_is_replayed_by_a_plain_form_post_and_shows_the_flips(user_client, trail):
    response = _post(user_client, DRAFT)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<strong class="changed-count">3</strong> of 4 calls', html)
    # allow -> deny (e1, by r-del), allow -> alert (e2, by r-prod), deny -> alert (old, by r-prod); e3 stays an alert.
    assert 'href="/events/?decision=allow"' in html
    assert re.search(r'd-allow">allow</span> <span aria-label="to">→</span> <span class="badge d-deny">deny</span> <span class="count">1</span>', html)
    assert 'href="/events/e1/"' in html and 'href="/events/e2/"' in html and 'href="/events/e3/"' not in html
    assert 'href="/events/?actor=alice%40company.com&amp;decision=allow&amp;decision=deny"' in html
    assert 'href="/events/?tool=delete_repo&amp;decision=allow&amp;decision=deny"' in html
    assert "mallory" not in html
    assert HOSTILE not in html  # escaped wherever it shows (an affected actor, a sample)
    assert "&lt;script&gt;" in html


def test_the_window_and_the_query_choose_the_calls(user_client, trail):
    html = _post(user_client, DRAFT, since=_at(2), q="list").content.decode()
    assert re.search(r'<strong class="changed-count">1</strong> of 1 calls', html)
    assert f'href="/events/?since={_at(2).replace(":", "%3A")}&amp;q=list&amp;decision=allow"' in html


def test_an_invalid_draft_is_shown_by_rule_and_field_and_kept_for_editing(user_client, trail):
    text = DRAFT + "  - id: r-bad\n    tool: x\n    action: block\n    conditions: {user: alice}\n"
    response = _post(user_client, text)
    assert response.status_code == 400
    html = response.content.decode()
    errors = html[html.index('id="policy-errors"'):]
    assert 'rule 2 (<span class="mono">r-bad</span>), <span class="mono">action</span>' in errors
    assert 'rule 2 (<span class="mono">r-bad</span>), <span class="mono">conditions.user</span>' in errors
    assert "r-bad" in html[html.index("<textarea"):html.index("</textarea>")]
    assert "changed-count" not in html


def test_an_invalid_window_is_a_visible_error(user_client, trail):
    response = _post(user_client, DRAFT, until="soon")
    assert response.status_code == 400
    assert re.search(r'has-error">\s*<label for="p-until">', response.content.decode())


def test_the_form_needs_its_csrf_token(viewer, trail):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(viewer)
    assert browser.post("/policy/", {"policy": DRAFT, "since": ""}).status_code == 403
    form = browser.get("/policy/?since=").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    assert browser.post("/policy/", {"policy": DRAFT, "since": "", "csrfmiddlewaretoken": token}).status_code == 200


def test_rule_statistics_count_the_window_and_show_rules_that_stopped_firing(user_client, trail):
    html = user_client.get(f"/policy/?since={_at(0)}").content.decode()
    stats = html[html.index('id="stats-h"'):]
    assert re.search(r'r-allow</span>.*?<td class="num"><a href="[^"]*q=rule%3Ar-allow">1</a>', stats, re.S)
    assert re.search(r'<tr class="d-deny stopped">.*?r-retired', stats, re.S)
    assert "Stopped firing" in stats and "globex" not in stats
    assert [m for m in re.findall(r'<option value="([^"]*)"', html[html.index('id="p-start"'):])] == ["github-guardrails"]


def test_start_from_the_trail_fills_the_editor_with_a_draft(user_client, trail):
    response = user_client.get(f"/policy/?since={_at(0)}&start=github-guardrails")
    assert response.status_code == 200
    html = response.content.decode()
    text = html[html.index(">", html.index("<textarea")) + 1:html.index("</textarea>")]
    draft = unescape(text)
    assert HOSTILE not in text
    document = yaml.safe_load(draft)
    assert [rule["id"] for rule in document["rules"]] == ["r-allow", "r-merge"]
    assert document["rules"][1]["conditions"] == {"metadata.env": "production"}
    assert "left out \"user\"" in draft
    assert policy_load(draft).name == "github-guardrails"


def test_queries_are_bounded(user_client, trail, django_assert_num_queries):
    user_client.get("/policy/")  # warm the session
    # session, user, membership+org, rule statistics, samples, counts, access record (+ settings on PostgreSQL)
    with django_assert_num_queries(8 if connection.vendor == "postgresql" else 7):
        assert _post(user_client, DRAFT).status_code == 200
