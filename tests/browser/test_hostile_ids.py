"""Ids and identities made to mislead, in a real Chromium: links go where they say, and
text that reorders or hides itself is shown for what it is."""

from urllib.parse import unquote

import pytest

from audit.accounts import services
from tests.browser.conftest import ARTIFACTS, login
from tests.factories import OrganizationFactory, store_events, wire_event

pytestmark = [pytest.mark.browser]

TRICKY_TRACES = ["../../events/evt-1", "a/../b", "./x", "q?x=1#frag", "100%2F", "back\\slash", "/lead", "trail/"]


@pytest.fixture
def acme(transactional_db):
    org = OrganizationFactory(slug="acme", name="Acme")
    services.user_create(org=org, username="viewer", password="viewer-pass-123")
    store_events(org, wire_event(id="evt-1", trace_id="plain-trace"),
                 *(wire_event(id=f"tricky-{n}", trace_id=trace) for n, trace in enumerate(TRICKY_TRACES)))
    return org


@pytest.mark.parametrize("n", range(len(TRICKY_TRACES)))
def test_view_trace_opens_that_trace(page, acme, n):
    trace = TRICKY_TRACES[n]
    login(page)
    page.goto(f"/events/tricky-{n}/")
    page.get_by_role("link", name="View trace").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == f"Trace {trace}"
    assert unquote(page.url.split("/traces/", 1)[1]) == trace + "/"
    assert not page.lens_problems
    page.get_by_role("link", name="JSON").click()  # the API's own URL for it (a JSON page: no favicon)
    assert f'"trace_id":"{trace}"'.replace("\\", "\\\\") in page.content().replace(" ", "")


SPOOF = "admin\u202e@moc.evil"


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_a_spoofed_actor_reads_as_written_and_errors_lead_back(browser, live_server, acme, viewport):
    store_events(acme, wire_event(id="spoof", actor=SPOOF, tool="send\u200bmoney", trace_id="run-\u2066spoof",
                                  arguments={"to\u202e": "evil", "amount": 100}))
    store_events(acme, wire_event(id="spoof", actor="someone else", arguments={"amount": 1_000_000}))  # a conflict
    services.user_create(org=acme, username="boss", password="boss-pass-123", role="admin")
    context = browser.new_context(viewport=viewport, base_url=live_server.url)
    page = context.new_page()
    login(page, username="boss", password="boss-pass-123")
    name = "desktop" if viewport["width"] > 800 else "phone"

    page.goto("/events/spoof/")
    actor = page.locator("section[aria-labelledby='call-h'] dd bdi").first
    assert actor.inner_text().replace("\n", "") == "adminU+202E@moc.evil"  # the override is a visible mark
    assert page.locator(".hidden-char").count() >= 4
    page.screenshot(path=str(ARTIFACTS / f"spoofed-actor-{name}.png"), full_page=True)

    page.goto("/no-such-page/")
    assert page.get_by_role("heading", name="Not found").is_visible()
    page.screenshot(path=str(ARTIFACTS / f"error-404-{name}.png"))
    page.get_by_role("link", name="Back to events").click()
    page.wait_for_url("**/events/")

    page.get_by_role("link", name="Conflicts").click() if name == "desktop" else page.goto("/conflicts/")
    page.wait_for_url("**/conflicts/")
    assert page.locator("tr[data-event-id='spoof']").count() == 1
    page.screenshot(path=str(ARTIFACTS / f"conflicts-{name}.png"), full_page=True)
    context.close()
