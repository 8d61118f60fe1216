"""The integrity page in a real headless Chromium: an admin verifies now; desktop and phone."""

import pytest

from audit.accounts import services
from audit.integrity import checkpoints
from audit.models import AuditEvent
from tests.browser.conftest import ARTIFACTS, login
from tests.factories import OrganizationFactory, store_events, wire_event

pytestmark = [pytest.mark.browser]


@pytest.fixture
def world(transactional_db):
    org = OrganizationFactory(slug="acme", name="Acme Robotics")
    services.user_create(org=org, username="admin", password="admin-pass-123", role="admin")
    services.user_create(org=org, username="viewer", password="viewer-pass-123")
    events = store_events(org, *(wire_event(id=f"evt-{n}") for n in range(12)))
    checkpoints.checkpoint_create(org=org, reason="schedule")
    store_events(org, wire_event(id="evt-late"))
    checkpoints.checkpoint_create(org=org, reason="export")
    return org, events


def test_an_admin_verifies_now_and_sees_the_result(page, world):
    org, events = world
    login(page, username="admin", password="admin-pass-123")
    page.get_by_role("link", name="Integrity").click()
    page.wait_for_url("**/integrity/")
    assert page.locator("#verification-h").inner_text().startswith("Last verification")
    assert "No verification has run yet" in page.content()
    assert page.locator("table.data tbody tr").count() == 2
    page.get_by_role("button", name="Verify now").click()
    page.wait_for_url("**/integrity/")
    assert "Verification started" in page.locator(".messages").inner_text()
    assert "chain intact: seq 1–13" in page.locator(".verification").inner_text()
    page.screenshot(path=ARTIFACTS / "integrity.png", full_page=True)

    # Tampering shows on the next run, with the event that broke the chain linked.
    AuditEvent.objects.filter(event_id="evt-4").update(actor="mallory@company.com")
    page.get_by_role("button", name="Verify now").click()
    page.wait_for_url("**/integrity/")
    panel = page.locator(".verification")
    assert "broken" in panel.inner_text().lower() and "changed at seq 5" in panel.inner_text()
    panel.get_by_role("link", name="evt-4").click()
    page.wait_for_url("**/events/evt-4/")
    page.go_back()
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=ARTIFACTS / "integrity-phone.png", full_page=True)
    assert page.lens_problems == []


def test_a_viewer_has_no_verify_button(page, world):
    login(page)
    page.goto("/integrity/")
    assert page.get_by_role("button", name="Verify now").count() == 0
    assert page.locator(".verification").is_visible()
    assert page.lens_problems == []
