"""The explorer in a real headless Chromium: log in, filter, open an event, follow its trace."""

from datetime import timedelta

import pytest

from audit.accounts import services
from tests.browser.conftest import ARTIFACTS, login
from tests.factories import BASE_TIME, OrganizationFactory, store_events, wire_event

pytestmark = [pytest.mark.browser]

HOSTILE = "<script>window.__lensPwned=1;alert('xss')</script>"
HOSTILE_IMG = "<img src=x onerror=\"window.__lensPwned=1;alert('img')\">"


def _at(ms):
    return (BASE_TIME + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _deny_rule():
    return {"id": "r-del", "policy": "github-guardrails", "index": 2, "tool": "delete_*", "action": "deny",
            "conditions": {"user": {"not_in": ["admin@company.com"]}}}


@pytest.fixture
def world(transactional_db):
    org = OrganizationFactory(slug="acme", name="Acme Robotics")
    services.user_create(org=org, username="viewer", password="viewer-pass-123")
    other = OrganizationFactory(slug="globex", name="Globex")
    store_events(other, wire_event(id="globex-secret", actor="mallory@globex.com", trace_id="trace-globex"))
    # One agent run across three connections: allow, alert, deny, a pause, then allow.
    chain = [
        wire_event(id="run-1", trace_id="trace-triage", timestamp=_at(0), slug="github-prod", tool="list_issues",
                   duration_ms=212, metadata={"feature": "issue-triage", "env": "production"}),
        wire_event(id="run-2", trace_id="trace-triage", timestamp=_at(400), slug="github-prod", tool="merge_pull_request",
                   duration_ms=380, decision="alert", metadata={"feature": "issue-triage", "env": "production"},
                   rule={"id": "r-merge", "policy": "github-guardrails", "index": 1, "tool": "merge_*", "action": "alert",
                         "conditions": {"metadata.env": "production"}}, reason="rule r-merge matched merge_*"),
        wire_event(id="run-3", trace_id="trace-triage", timestamp=_at(900), slug="github-prod", tool="delete_repo",
                   arguments={"repo": "acme/legacy"}, duration_ms=3, decision="deny", outcome="denied", status_code=403,
                   error="denied by policy", rule=_deny_rule(), reason="rule r-del of github-guardrails matched delete_*",
                   metadata={"feature": "issue-triage", "env": "production"}),
        wire_event(id="run-4", trace_id="trace-triage", timestamp=_at(4200), slug="slack-prod", tool="post_message",
                   arguments={"channel": "#triage", "text": "Top 3 issues " * 20}, duration_ms=95,
                   metadata={"feature": "issue-triage"}, rule=None),
        wire_event(id="run-5", trace_id="trace-triage", timestamp=_at(4700), slug="jira-cloud", tool="create_ticket",
                   duration_ms=640, metadata={"feature": "issue-triage"}),
    ]
    others = [
        wire_event(id=f"bob-{n}", actor="bob@company.com", trace_id=f"trace-bob-{n}", timestamp=_at(10_000 + n * 1000),
                   slug="postgres-analytics", tool="run_query", arguments={"query": "SELECT count(*) FROM orders"},
                   metadata={"feature": "release-notes", "env": "staging"})
        for n in range(4)
    ]
    hostile = wire_event(
        id="evil-1", actor=HOSTILE, trace_id="trace-evil", timestamp=_at(20_000), tool="create_issue",
        arguments={"title": HOSTILE, "body": HOSTILE_IMG}, metadata={"note": HOSTILE, "feature": "issue-triage"},
        error=HOSTILE_IMG, reason=HOSTILE,
    )
    store_events(org, *chain, *others, hostile)
    return org


def _rows(page):
    return page.locator("table.events tbody tr[data-event-id]")


def test_log_in_filter_open_an_event_and_follow_its_trace(page, world):
    response = page.goto("/events/")
    assert "/login/" in page.url
    login(page)
    assert page.locator(".account .org").inner_text() == "Acme Robotics"
    assert _rows(page).count() == 10  # this organization's events only
    assert page.locator("tr[data-event-id='globex-secret']").count() == 0
    response = page.goto("/events/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.screenshot(path=ARTIFACTS / "events-list.png", full_page=True)

    # By actor, through the form.
    page.get_by_label("Actor", exact=True).fill("bob@company.com")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/events/?actor=bob%40company.com")
    assert _rows(page).count() == 4
    assert set(_rows(page).locator("td:nth-child(3)").all_inner_texts()) == {"bob@company.com"}

    # By metadata: clear, then add key=value with the suggestion inputs; it becomes a chip.
    page.get_by_role("link", name="Clear", exact=True).click()
    page.get_by_label("Key").fill("feature")
    # With JavaScript, the value suggestions follow the chosen key.
    values_list = page.get_by_label("Value").get_attribute("list")
    assert page.locator(f"datalist#{values_list} option").evaluate_all("os => os.map(o => o.value)") == [
        "issue-triage", "release-notes"]
    page.get_by_label("Value").fill("release-notes")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/events/?metadata.feature=release-notes")
    assert _rows(page).count() == 4
    assert page.locator(".filters .chip").inner_text().startswith("feature=release-notes")
    # The chip's × removes it again.
    page.get_by_role("link", name="Remove metadata filter feature=release-notes").click()
    page.wait_for_url("**/events/")
    assert _rows(page).count() == 10

    # By decision: tick deny and alert (OR), then narrow with a facet click.
    page.get_by_role("checkbox", name="deny").check()
    page.get_by_role("checkbox", name="alert").check()
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/events/?decision=deny&decision=alert")
    assert sorted(_rows(page).evaluate_all("rows => rows.map(r => r.dataset.eventId)")) == ["run-2", "run-3"]
    page.locator(".facet a[title='Add decision:deny']").click()
    page.wait_for_url("**/events/?decision=deny&decision=alert&q=decision%3Adeny")
    assert _rows(page).evaluate_all("rows => rows.map(r => r.dataset.eventId)") == ["run-3"]
    assert "d-deny" in _rows(page).first.get_attribute("class")
    export = page.get_by_role("link", name="CSV").get_attribute("href")
    assert export == "/api/v1/audit-events/export?format=csv&decision=deny&decision=alert&q=decision%3Adeny"

    # Open the denied event: why it was denied, and the way to its trace.
    _rows(page).first.locator("td:nth-child(2) a").click()
    page.wait_for_url("**/events/run-3/")
    verdict = page.locator(".verdict").inner_text()
    for expected in ("DENY", "r-del", "github-guardrails", "index 2", "delete_*", "not_in", "matched delete_*"):
        assert expected in verdict, expected
    assert '"acme/legacy"' in page.locator("#args-h + .json").inner_text()
    page.screenshot(path=ARTIFACTS / "event-detail.png", full_page=True)

    page.get_by_role("link", name="View trace").click()
    page.wait_for_url("**/traces/trace-triage/")
    calls = page.locator("details.tl-call")
    assert calls.evaluate_all("els => els.map(e => e.dataset.eventId)") == ["run-1", "run-2", "run-3", "run-4", "run-5"]
    xs = page.locator("svg.tl-track rect.bar").evaluate_all("rs => rs.map(r => parseFloat(r.getAttribute('x')))")
    assert xs == sorted(xs) and xs[0] == 0 and len(set(xs)) == 5
    # The bars are drawn where the server put them: later calls sit further right on screen.
    lefts = page.locator("svg.tl-track rect.bar").evaluate_all("rs => rs.map(r => r.getBoundingClientRect().left)")
    assert lefts == sorted(lefts) and lefts[-1] > lefts[0] + 300
    assert page.locator("rect.mark-deny").count() == 1 and page.locator("rect.mark-alert").count() == 1
    # The pauses before the slack call and the jira call are drawn as gaps.
    assert page.locator(".tl-gap .gap-label").all_inner_texts() == ["… 3.3 s idle …", "… 405 ms idle …"]
    assert "3 connections" in page.locator(".page-head").inner_text()
    page.screenshot(path=ARTIFACTS / "trace-chain.png", full_page=True)

    # Keyboard: a call's summary opens its detail in place.
    calls.nth(2).locator("summary").focus()
    page.keyboard.press("Enter")
    assert calls.nth(2).locator(".tl-detail").is_visible()
    assert "denied by policy" in calls.nth(2).locator(".tl-detail").inner_text()
    page.screenshot(path=ARTIFACTS / "trace-chain-open.png", full_page=True)

    # A narrow window still reads.
    page.set_viewport_size({"width": 420, "height": 900})
    page.screenshot(path=ARTIFACTS / "trace-chain-narrow.png", full_page=True)
    page.goto("/events/")
    page.screenshot(path=ARTIFACTS / "events-list-narrow.png", full_page=True)
    assert page.lens_problems == []


def test_hostile_content_is_shown_as_text_and_never_runs(page, world):
    login(page)
    for path in ("/events/", "/events/evil-1/", "/traces/trace-evil/", "/traces/", "/events/?q=%3Cscript%3E"):
        response = page.goto(path)
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        assert page.evaluate("window.__lensPwned") is None, path
    page.goto("/events/evil-1/")
    assert HOSTILE in page.locator(".page-head").inner_text()  # the actor, as text
    assert HOSTILE in page.locator("#args-h + .json").inner_text()
    assert HOSTILE in page.locator("table.kv").inner_text()
    assert HOSTILE_IMG in page.locator(".error-text").inner_text()
    assert page.locator("main script, main img").count() == 0
    page.goto("/traces/trace-evil/")
    page.locator("details.tl-call summary").first.click()
    assert page.evaluate("window.__lensPwned") is None
    page.screenshot(path=ARTIFACTS / "hostile-event.png", full_page=True)
    assert page.lens_problems == []


def test_another_organizations_pages_are_not_found(page, world):
    login(page)
    assert page.goto("/events/globex-secret/").status == 404
    assert page.goto("/traces/trace-globex/").status == 404
    assert "mallory" not in page.content()


def test_everything_works_without_javascript(browser, live_server, world):
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    login(page)
    # The form submits every field; the server redirects once to the canonical, shareable URL.
    page.get_by_label("Key").fill("env")
    page.get_by_label("Value").fill("production")
    page.get_by_role("checkbox", name="deny").check()
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/events/?decision=deny&metadata.env=production")
    assert _rows(page).evaluate_all("rows => rows.map(r => r.dataset.eventId)") == ["run-3"]
    page.goto("/traces/trace-triage/")
    page.locator("details.tl-call summary").nth(3).click()
    assert page.locator("details.tl-call").nth(3).locator(".tl-detail").is_visible()
    context.close()


def test_each_row_shows_its_outcome_and_actor_once_on_a_desktop_and_on_a_phone(page, world):
    login(page)
    page.goto("/events/?decision=deny")
    row = _rows(page).first

    def visible_outcomes():
        return row.locator(".badge.o-bad").evaluate_all("badges => badges.filter(b => b.offsetParent).map(b => b.textContent)")

    assert visible_outcomes() == ["denied"]  # in the Outcome column
    assert row.locator(".show-sm").evaluate_all("els => els.filter(e => e.offsetParent).length") == 0  # nor the actor twice
    page.set_viewport_size({"width": 390, "height": 844})
    assert visible_outcomes() == ["denied"]  # under the decision, the Outcome column hidden
    assert row.locator(".show-sm").evaluate_all("els => els.filter(e => e.offsetParent).length") == 2  # actor, outcome
