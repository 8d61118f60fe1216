"""Retention in a real headless Chromium: an admin sets it on the integrity page; the event
page marks redacted values and removed arguments; desktop and phone."""

import pytest

from audit.accounts import services
from audit.models import AuditEvent
from audit.retention.models import RetentionPolicy
from audit.ingest.redaction import redaction_set
from tests.browser.conftest import ARTIFACTS, login
from tests.factories import OrganizationFactory, store_events, wire_event

pytestmark = [pytest.mark.browser]


@pytest.fixture
def world(transactional_db):
    org = OrganizationFactory(slug="acme", name="Acme Robotics")
    services.user_create(org=org, username="admin", password="admin-pass-123", role="admin")
    redaction_set(org=org, paths=["arguments.auth.token", "metadata.user_email"])
    from audit.ingest.redaction import items_redact

    raw = [wire_event(id="evt-r", arguments={"auth": {"token": "sk-live"}, "repo": "acme/igris"},
                      metadata={"user_email": "bob@acme.com", "env": "production"}),
           wire_event(id="evt-gone", arguments={"repo": "acme/old"})]
    store_events(org, *items_redact(org=org, items=raw))
    AuditEvent.objects.filter(event_id="evt-gone").update(arguments=None, arguments_removed=True)
    return org


def test_an_admin_sets_retention_and_events_show_what_was_redacted_or_removed(page, world):
    login(page, username="admin", password="admin-pass-123")
    page.goto("/integrity/")
    page.get_by_label("Keep events").fill("90d")
    page.get_by_label("Keep arguments").fill("30d")
    page.get_by_role("button", name="Save retention").click()
    page.wait_for_url("**/integrity/**")
    assert "Events are kept 90d, their arguments 30d" in page.locator(".messages").inner_text()
    assert RetentionPolicy.objects.get(org=world).keep_seconds == 90 * 86400
    page.locator("#retention-h").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "retention-integrity.png", full_page=True)

    page.goto("/events/evt-r/")
    note = page.locator("#redacted").inner_text()
    assert "arguments.auth.token" in note and "metadata.user_email" in note
    assert "sk-live" not in page.content() and "bob@acme.com" not in page.content()
    page.screenshot(path=ARTIFACTS / "retention-event-redacted.png", full_page=True)
    page.goto("/events/evt-gone/")
    assert "removed by retention" in page.locator("#args-h + p").inner_text()
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=ARTIFACTS / "retention-event-removed-phone.png", full_page=True)
    page.goto("/integrity/")
    page.screenshot(path=ARTIFACTS / "retention-integrity-phone.png", full_page=True)
    assert page.lens_problems == []
