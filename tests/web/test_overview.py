"""The overview at `/` and the events page's chart, total and live switch (SPEC §8)."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.factories import store_events, wire_event


def _ago(minutes):
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def recent(org, other_org):
    store_events(
        org,
        wire_event(timestamp=_ago(5), actor="mallory@x.com", tool="delete_repo", decision="deny", outcome="denied",
                   rule={"id": "r-del", "policy": "p"}, duration_ms=3),
        wire_event(timestamp=_ago(6), actor="mallory@x.com", tool="delete_repo", decision="deny", outcome="denied",
                   rule={"id": "r-del", "policy": "p"}, duration_ms=4),
        wire_event(timestamp=_ago(7), actor=None, tool="export_all", decision="alert", rule=None, duration_ms=40),
        wire_event(timestamp=_ago(8), tool="slow_search", outcome="upstream_error", duration_ms=9000),
        wire_event(timestamp=_ago(9), tool="list_issues", outcome="rate_limited", status_code=429, duration_ms=10),
        wire_event(timestamp=_ago(3 * 24 * 60), tool="old_tool", decision="deny", outcome="denied"),  # outside 24h
    )
    store_events(other_org, wire_event(timestamp=_ago(5), actor="eve@other.com", decision="deny", outcome="denied"))


def _section(html, title):
    start = html.index(title)
    return html[start:html.index("</section>", start)]


def test_overview_counts_the_window_and_links_each_figure_to_its_events(user_client, recent):
    html = user_client.get("/").content.decode()
    tiles = _section(html, 'aria-label="Rates"')
    assert '<span class="tile-value">5</span>' in tiles  # calls in the last 24 h
    assert "40%" in tiles and "denied (2)" in tiles and "alerted (1)" in tiles
    assert "errors (1)" in tiles and "rate-limited (1)" in tiles
    assert "/events/?since=24h&amp;decision=deny" in tiles
    actors = _section(html, "Top denied actors")
    assert "mallory@x.com" in actors and "eve@other.com" not in actors
    assert "/events/?since=24h&amp;decision=deny&amp;actor=mallory%40x.com" in actors
    rules = _section(html, "Rules that fired")
    assert "r-del" in rules and "q=rule%3Ar-del" in rules
    slowest = _section(html, "Slowest tools")
    assert slowest.index("slow_search") < slowest.index("export_all") < slowest.index("list_issues")
    assert "old_tool" not in html
    week = user_client.get("/?since=7d").content.decode()
    assert '<span class="tile-value">6</span>' in week
    assert 'data-lens-histogram="/api/v1/audit-events/histogram?since=7d"' in week


def test_overview_links_the_anonymous_and_ignores_an_unknown_window(user_client, recent):
    html = user_client.get("/?since=forever").content.decode()
    assert "the last 24 hours" in html
    flagged = _section(html, "Rules that fired")
    assert "q=no%3Arule" in flagged


def test_the_events_page_has_the_total_the_chart_and_live_of_its_filter(user_client, recent):
    html = user_client.get("/events/?decision=deny&since=24h&facet=env").content.decode()
    assert '<span class="chart-total" data-lens-total>2</span> matching events' in html
    chart = html[html.index("data-lens-histogram="):].split('"')[1]
    assert parse_qs(urlsplit(chart.replace("&amp;", "&")).query) == {"decision": ["deny"], "since": ["24h"]}
    assert 'data-lens-live="/api/v1/audit-events/stream?decision=deny&amp;since=24h"' in html
    picker = html[html.index("data-lens-range"):html.index("</form>", html.index("data-lens-range"))]
    assert 'name="decision" value="deny"' in picker and 'value="24h"' not in picker
