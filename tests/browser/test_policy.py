"""/policy/ in a real headless Chromium: paste a draft, replay it, see the flips, follow one."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.accounts import services
from audit.events.demo import demo_events
from audit.ingest.store import events_store_now
from tests.browser.conftest import ARTIFACTS, login
from tests.factories import OrganizationFactory, store_events, wire_event

pytestmark = [pytest.mark.browser]

HOSTILE = "<img src=x onerror=\"window.__lensPwned=1\">"
DRAFT = """name: github-guardrails
default: allow
rules:
  - id: r-admin-del
    tool: delete_*
    action: allow
    conditions:
      actor: admin@*
  - id: r-del
    tool: delete_*
    action: deny
  - id: r-share-public
    tool: share_file
    action: deny
    conditions:
      arguments.visibility: public
  - id: r-anon-prod
    tool: "*"
    action: deny
    conditions:
      actor: null
      metadata.env: production
"""


@pytest.fixture
def world(transactional_db):
    org = OrganizationFactory(slug="acme", name="Acme Robotics")
    services.user_create(org=org, username="viewer", password="viewer-pass-123")
    events_store_now(org_id=org.pk, raw_events=list(demo_events(count=600, seed=3, days=3)))
    now = timezone.now()
    store_events(org, wire_event(id="hostile", timestamp=(now - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                                 actor=HOSTILE, tool="delete_repo", decision="allow", rule=None))
    other = OrganizationFactory(slug="globex", name="Globex")
    store_events(other, wire_event(id="globex-secret", actor="mallory@globex.com", tool="delete_repo", decision="allow"))
    return org


def test_paste_a_draft_and_see_the_flips(page, world):
    login(page)
    page.get_by_role("link", name="Policy what-if").click()
    page.wait_for_url("**/policy/")
    assert page.locator("#stats-h").is_visible()
    page.screenshot(path=ARTIFACTS / "policy-empty.png", full_page=True)

    page.get_by_label("Draft policy").fill(DRAFT)
    page.get_by_label("Since").select_option("7d")
    page.get_by_role("button", name="Replay the draft").click()
    page.wait_for_selector("#outcome")
    headline = page.locator(".headline").inner_text()
    changed = int(page.locator(".changed-count").inner_text())
    assert changed > 0 and "calls would be decided differently" in headline
    flips = page.locator("ul.flips li")
    assert flips.count() >= 1 and "→" in flips.first.inner_text()
    by_rule = page.locator("table.by-rule tbody tr")
    assert by_rule.count() == 5  # four rules and the default
    assert page.locator("table.samples tbody tr").count() > 0
    assert page.locator("tr[data-event-id='globex-secret']").count() == 0
    assert page.evaluate("window.__lensPwned") is None
    assert page.get_by_label("Draft policy").input_value() == DRAFT  # the draft stays for the next edit
    page.screenshot(path=ARTIFACTS / "policy-flips.png", full_page=True)

    # A flip links to its events.
    with page.expect_navigation():
        flips.first.locator("a").click()
    assert "/events/?" in page.url and "decision=" in page.url
    page.go_back()

    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=ARTIFACTS / "policy-flips-phone.png", full_page=True)
    page.screenshot(path=ARTIFACTS / "policy-editor-phone.png")
    page.locator("#outcome").screenshot(path=ARTIFACTS / "policy-outcome-phone.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # nothing spills sideways
    assert page.lens_problems == []


def test_start_from_the_trail_and_fix_a_bad_draft(page, world):
    login(page)
    page.goto("/policy/")
    page.get_by_label("The rules of a policy, as events in this window recorded them").select_option("github-guardrails")
    page.get_by_role("button", name="Load as draft").click()
    draft = page.get_by_label("Draft policy").input_value()
    assert "name: github-guardrails" in draft and "r-del" in draft

    page.get_by_label("Draft policy").fill(draft.replace("action: deny", "action: block", 1))
    page.get_by_role("button", name="Replay the draft").click()
    errors = page.locator("#policy-errors")
    assert errors.is_visible() and "action" in errors.inner_text() and "rule " in errors.inner_text()
    page.screenshot(path=ARTIFACTS / "policy-invalid.png", full_page=True)
    # The page answers an invalid draft with a 400, which the browser notes; nothing else went wrong.
    assert [p for p in page.lens_problems if "status of 400" not in p] == []
