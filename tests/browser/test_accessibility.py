"""axe-core with WCAG 2.0–2.2 A and AA rules over every page, on a desktop and a phone, in light
and dark colour schemes; and no layout shift on a phone while /events/ loads.

axe-core comes from npm (package.json; node_modules/axe-core). It is injected into each page
through Playwright with the page's CSP bypassed for that one script (the pages themselves
still run under their own CSP: tests/browser/test_explorer.py and others fail on a violation).
Every page is screenshotted to test-artifacts/a11y-<device>-<scheme>-<page>.png.
"""

import json
import time
from pathlib import Path

import pytest

from audit.accounts import services
from audit.accounts.caller import Caller
from audit.alerts import services as alert_services
from audit.events.demo import demo_events
from audit.events.models import AuditEvent
from audit.explore.saved_views import saved_view_create
from audit.ingest.receive import events_receive
from audit.ingest.store import events_store_now
from tests.browser.conftest import ARTIFACTS, login
from tests.factories import OrganizationFactory, store_events, wire_event

pytestmark = [pytest.mark.browser]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
DEVICES = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True},
}
LONG = "x" * 300  # one unbroken value: it must never widen a page


@pytest.fixture
def world(transactional_db, settings):
    settings.LENS_DESTINATION_ALLOWED_HOSTS = ["127.0.0.1"]
    org = OrganizationFactory(slug="acme", name="Acme Robotics")
    admin = services.user_create(org=org, username="admin", password="admin-pass-123", role="admin")
    events_store_now(org_id=org.pk, raw_events=list(demo_events(count=120, seed=7, days=2)))
    store_events(org, wire_event(id="long-" + "y" * 59, trace_id="trace-" + LONG[:100], actor=LONG[:254],
                                 tool="delete_" + LONG[:100], decision="deny", outcome="denied", status_code=403,
                                 metadata={"note": LONG}, arguments={"path": LONG}))
    # A conflict: the same id again with other content.
    events_receive(org=org, body=json.dumps(wire_event(id="long-" + "y" * 59, tool="other")).encode(),
                   content_type="application/json")
    destination, _ = alert_services.destination_create(org=org, name="SOC", kind="webhook", url="http://127.0.0.1:9/hook")
    alert_services.rule_create(org=org, name="Denies", query="decision:deny", destination=destination)
    saved_view_create(caller=Caller(org=org, user=admin, role="admin"), name="Denies today",
                      query="decision=deny&since=24h", shared=True)
    return org


def pages(org):
    event = AuditEvent.objects.filter(org=org, decision="deny").exclude(event_id__startswith="long-").first()
    return {
        "overview": "/",
        "events": "/events/",
        "events-filtered": "/events/?decision=deny&decision=alert",
        "events-empty": "/events/?actor=nobody@nowhere",
        "events-error": "/events/?since=yesterday",
        "event": f"/events/{event.event_id}/",
        "event-long": "/events/long-" + "y" * 59 + "/",
        "traces": "/traces/",
        "trace": f"/traces/{event.trace_id}/",
        "integrity": "/integrity/",
        "alerts": "/alerts/",
        "policy": "/policy/",
        "conflicts": "/conflicts/",
        "not-found": "/events/no-such-event/",
        "api-docs": "/api/v1/docs",
    }


def axe_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return result.violations.map(v => `${v.id}: ${v.help} — ` +
                v.nodes.slice(0, 4).map(n => n.target.join(" ") + " (" + (n.failureSummary || "").split("\\n")[1] + ")").join("; "));
        }""",
        TAGS,
    )
    return found


def page_is_no_wider_than_the_window(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", list(DEVICES))
def test_every_page_passes_axe_wcag_22_aa(browser, live_server, world, device, scheme):
    context = browser.new_context(base_url=live_server.url, color_scheme=scheme, bypass_csp=True, **DEVICES[device])
    page = context.new_page()
    problems = []
    try:
        page.goto("/login/")
        problems += [f"login: {v}" for v in axe_violations(page)]
        page.screenshot(path=ARTIFACTS / f"a11y-{device}-{scheme}-login.png")
        login(page, username="admin", password="admin-pass-123")
        for name, url in pages(world).items():
            page.goto(url)
            page.wait_for_load_state("networkidle")
            problems += [f"{name}: {v}" for v in axe_violations(page)]
            if name != "api-docs" and not page_is_no_wider_than_the_window(page):
                problems.append(f"{name}: the page is wider than the window")
            # The first screen, as a person sees it on arrival.
            page.screenshot(path=ARTIFACTS / f"a11y-{device}-{scheme}-{name}.png")
    finally:
        context.close()
    assert problems == [], "\n".join(problems)


def test_events_on_a_phone_load_without_layout_shift(browser, live_server, world):
    """The filter panel is folded on a phone by the markup and CSS, not by a script after load."""
    context = browser.new_context(base_url=live_server.url, **DEVICES["phone"])
    page = context.new_page()
    page.add_init_script(
        """window.__lensShift = 0;
        new PerformanceObserver(list => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.__lensShift += e.value; })
            .observe({type: "layout-shift", buffered: true});"""
    )
    try:
        login(page, username="admin", password="admin-pass-123")
        # Scripts arrive late, as on a slow phone network: the page is painted before they run,
        # so anything a script changes in the layout shows as a shift (Lighthouse saw 0.596).
        page.route("**/*.js", lambda route: (time.sleep(0.6), route.continue_()))
        page.goto("/events/")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
        shift = page.evaluate("window.__lensShift")
        folded = page.evaluate("!document.querySelector('[data-lens-collapse-narrow]').open")
        first_row = page.locator("table.events tbody tr").first.bounding_box()
    finally:
        context.close()
    assert shift < 0.01, f"cumulative layout shift {shift:.3f}"
    assert folded
    assert first_row["y"] < 844, "the first event is below the first screen"


def test_the_event_table_is_worked_from_the_keyboard(browser, live_server, world):
    """j/k move through the rows and Enter opens one; the header stays in view; ids copy whole."""
    context = browser.new_context(base_url=live_server.url, **DEVICES["desktop"])
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        login(page, username="admin", password="admin-pass-123")
        page.goto("/events/")
        rows = page.locator("table.events tbody tr")
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("k")
        assert "is-current" in rows.nth(0).get_attribute("class")
        assert "is-current" not in (rows.nth(1).get_attribute("class") or "")
        first_id = rows.nth(0).get_attribute("data-event-id")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/events/{first_id}/")

        page.goto("/events/")
        page.locator("table.events tbody tr").nth(2).hover()
        page.mouse.wheel(0, 1500)
        page.wait_for_timeout(300)
        box = page.locator(".table-wrap").bounding_box()
        header = page.locator("table.events thead th").first.bounding_box()
        assert rows.nth(0).bounding_box()["y"] < box["y"], "the rows did not scroll"
        assert abs(header["y"] - box["y"]) <= 2 and header["y"] >= 0, f"the header scrolled away: {header} {box}"

        row = rows.nth(3)
        row.hover()
        trace_id = row.locator("td.has-copy a").get_attribute("title").removeprefix("Open trace ")
        row.locator("button.copy").click()
        assert page.evaluate("navigator.clipboard.readText()") == trace_id
        assert row.locator("button.copy").inner_text() == "Copied"
    finally:
        context.close()
