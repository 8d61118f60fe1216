"""The events page's histogram (drag to zoom), live tail and range picker, and the overview, in
headless Chromium under the strict CSP."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from audit.accounts import services
from tests.browser.conftest import ARTIFACTS, login
from tests.factories import store_events, wire_event

pytestmark = pytest.mark.django_db(transaction=True)
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def _ago(minutes):
    return (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def spread(org, viewer, settings):
    """Events every 20 minutes over the last 8 hours, a deny in every third."""
    settings.LENS_STREAM_MAX_SECONDS = 60
    settings.LENS_STREAM_POLL_SECONDS = 0.2
    store_events(org, *[
        wire_event(id=f"s-{n}", timestamp=_ago(20 * n + 5), actor=f"user{n % 3}@x.com",
                   decision="deny" if n % 3 == 0 else "allow", outcome="denied" if n % 3 == 0 else "success",
                   tool="delete_repo" if n % 3 == 0 else "list_issues", duration_ms=10 + n)
        for n in range(24)
    ])
    return org


def _rows(page):
    return page.locator("table.events tbody tr[data-event-id]")


def test_drag_across_the_histogram_zooms_the_list(page, spread):
    login(page)
    page.goto("/events/?since=24h")
    chart = page.locator(".chart .u-over")
    chart.wait_for()
    assert page.locator("[data-lens-total]").inner_text() == "24"
    before = _rows(page).count()
    box = chart.bounding_box()
    page.screenshot(path=ARTIFACTS / "events-histogram.png", full_page=True)
    # Drag across the right-hand quarter: the most recent hours of the day.
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.75, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.9, y, steps=5)
    page.mouse.move(box["x"] + box["width"] - 2, y, steps=5)
    page.mouse.up()
    page.wait_for_url("**until=**")
    query = parse_qs(urlsplit(page.url).query)
    since, until = (datetime.fromisoformat(query[k][0].replace("Z", "+00:00")) for k in ("since", "until"))
    assert since < until and since > NOW - timedelta(hours=24)
    shown = int(page.locator("[data-lens-total]").inner_text())
    assert 0 < shown < 24 and _rows(page).count() == shown < before
    for stamp in page.locator("table.events tbody tr[data-event-id] td:first-child a").evaluate_all(
            "links => links.map(a => a.title)"):
        called = stamp.rsplit(" · ", 1)[-1]  # the title reads "<event id> · <time>"
        assert since <= datetime.strptime(called, "%Y-%m-%d %H:%M:%S.%f UTC").replace(tzinfo=UTC) <= until
    assert page.lens_problems == []


def test_the_live_tail_shows_an_event_another_client_posts(page, spread, live_server):
    key = services.api_key_create(org=spread, scopes=["ingest"], name="gateway")[1]
    login(page)
    page.goto("/events/?decision=deny")
    page.get_by_label("Live").check()
    page.locator("[data-lens-live-state]").filter(has_text="waiting").wait_for()
    response = httpx.post(f"{live_server.url}/api/v1/audit-events", headers={"Authorization": f"Bearer {key}"},
                          json=[wire_event(id="live-allow", timestamp=_ago(0)),
                                wire_event(id="live-<b>deny</b>", timestamp=_ago(0), actor="<img src=x onerror=alert(1)>",
                                           decision="deny", outcome="denied")],
                          timeout=30)
    assert response.status_code == 400 or response.status_code in (202, 207)
    # The id above is refused at the door (not a valid id); post a good one too.
    httpx.post(f"{live_server.url}/api/v1/audit-events", headers={"Authorization": f"Bearer {key}"},
               json=[wire_event(id="live-deny", timestamp=_ago(0), actor="<img src=x onerror=alert(1)>",
                                decision="deny", outcome="denied")], timeout=30)
    first = _rows(page).first
    page.wait_for_function("() => document.querySelector('table.events tbody tr').dataset.eventId === 'live-deny'")
    assert first.locator("td").nth(2).inner_text() == "<img src=x onerror=alert(1)>"  # text, never markup
    assert page.locator("tr[data-event-id='live-allow']").count() == 0  # not a deny
    assert page.locator("[data-lens-total]").inner_text() == "9"
    page.screenshot(path=ARTIFACTS / "events-live.png", full_page=True)
    assert page.lens_problems == []


def test_the_range_picker_writes_the_window_in_utc(page, spread):
    login(page)
    page.goto("/events/?decision=deny")
    page.get_by_label("UTC", exact=True).check()
    page.get_by_label("From", exact=True).fill((NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_label("To", exact=True).fill(NOW.strftime("%Y-%m-%dT%H:%M:%S"))
    page.locator("[data-lens-range] button").click()
    page.wait_for_url("**until=**")
    query = parse_qs(urlsplit(page.url).query)
    assert query["decision"] == ["deny"]
    assert query["since"] == [(NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert query["until"] == [NOW.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert page.lens_problems == []


def test_overview_desktop_and_phone(page, spread):
    login(page)
    page.goto("/")
    page.locator(".chart .u-over").wait_for()
    assert page.locator(".tile").first.inner_text().startswith("24")
    page.screenshot(path=ARTIFACTS / "overview.png", full_page=True)
    page.get_by_role("link", name="delete_repo").first.click()
    page.wait_for_url("**/events/**")
    assert set(parse_qs(urlsplit(page.url).query)["tool"]) == {"delete_repo"}
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    page.locator(".chart .u-over").wait_for()
    page.screenshot(path=ARTIFACTS / "overview-phone.png", full_page=True)
    page.goto("/events/?since=24h")
    page.locator(".chart .u-over").wait_for()
    page.screenshot(path=ARTIFACTS / "events-histogram-phone.png", full_page=True)
    assert page.lens_problems == []
