"""/alerts/ in a real headless Chromium: an admin adds a destination and a rule, sees an
event delivered, sends a test and pauses the destination; desktop and phone."""

import pytest

from audit.accounts import services
from tests.alerts.receivers import receiver_start, receiver_stop
from tests.browser.conftest import ARTIFACTS, login
from tests.factories import OrganizationFactory, store_events, wire_event

pytestmark = [pytest.mark.browser]


@pytest.fixture
def world(transactional_db, settings):
    settings.LENS_DESTINATION_ALLOWED_HOSTS = ["127.0.0.1"]
    org = OrganizationFactory(slug="acme", name="Acme Robotics")
    services.user_create(org=org, username="admin", password="admin-pass-123", role="admin")
    receiver = receiver_start()
    yield org, receiver
    receiver_stop(receiver)


def test_an_admin_sets_up_an_alert_and_sees_it_delivered(page, world):
    org, receiver = world
    login(page, username="admin", password="admin-pass-123")
    page.get_by_role("link", name="Alerts").click()
    page.wait_for_url("**/alerts/")

    form = page.get_by_role("form", name="Add a destination")
    form.get_by_label("Name").fill("SOC <b>webhook</b>")
    form.get_by_label("Kind").select_option("webhook")
    form.get_by_label("URL").fill(receiver.url)
    form.get_by_role("button", name="Add destination").click()
    secret = page.get_by_test_id("new-secret").inner_text()
    assert secret.startswith("whsec_")
    page.screenshot(path=ARTIFACTS / "alerts-secret-once.png", full_page=True)
    page.get_by_role("link", name="Done").click()
    assert secret not in page.content()

    form = page.get_by_role("form", name="Add an alert rule")
    form.get_by_label("Name").fill("Repository deletions")
    form.get_by_label("Query").fill("delete_repo")
    form.get_by_role("button", name="Add rule").click()
    assert page.get_by_text("Alert rule Repository deletions added").is_visible()

    store_events(org, wire_event(id="evt-del", tool="delete_repo", decision="deny", outcome="denied", status_code=403))
    page.reload()
    row = page.locator("table.deliveries tbody tr").first
    assert "delivered" in row.inner_text() and "evt-del" in row.inner_text()
    assert len(receiver.requests) == 1

    page.get_by_role("button", name="Send test").click()
    assert page.get_by_text("Test to SOC <b>webhook</b>: HTTP 200.").is_visible()
    page.get_by_role("button", name="Pause").click()
    assert page.get_by_text("Paused by an admin").is_visible()
    page.screenshot(path=ARTIFACTS / "alerts-page.png", full_page=True)
    page.set_viewport_size({"width": 420, "height": 900})
    page.screenshot(path=ARTIFACTS / "alerts-page-narrow.png", full_page=True)
    assert page.lens_problems == []


def test_a_viewer_has_no_alerts_link_or_page(page, world):
    org, _ = world
    services.user_create(org=org, username="viewer", password="viewer-pass-123")
    login(page)
    assert page.get_by_role("link", name="Alerts").count() == 0
    assert page.goto("/alerts/").status == 403
