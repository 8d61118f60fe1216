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
