"""Swagger UI at /api/v1/docs renders in a real browser under Lens's CSP, with no CDN."""

import pytest

from tests.browser.conftest import browser, page  # noqa: F401 (fixtures)


@pytest.mark.browser
def test_docs_render_every_operation_without_csp_violations(page, live_server):  # noqa: F811
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/api/v1/docs")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "Lens audit-events API" in page.locator(".swagger-ui .info .title").inner_text()
    operations = page.locator(".opblock-summary-path").all_inner_texts()
    for path in ("/api/v1/audit-events", "/api/v1/audit-events/export", "/api/v1/traces/{trace_id}"):
        assert any(text.replace("\u200b", "") == path for text in operations), operations
    assert page.lens_problems == []
    assert all(url.startswith(live_server.url) for url in requested), requested
