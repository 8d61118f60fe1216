"""The same query gives the same events in the API, the events page, exports and the
trace list, and a bad query is the same positioned message in the API and under the box."""

import json
import re
from urllib.parse import urlencode

import pytest
from django.utils.html import escape

from tests.explore.query.test_language import ROWS, matching

FACE_ROWS = [row for row in ROWS if row[0].strip()][::3]  # a third of the table, every kind of term


def _page_ids(response):
    return set(re.findall(r'data-event-id="([^"]+)"', response.content.decode()))


@pytest.mark.parametrize("q, expected", FACE_ROWS)
def test_api_page_and_export_agree(corpus, org, api_client, read_key, user_client, q, expected):
    query = urlencode({"q": q})
    api = api_client.get(f"/api/v1/audit-events?{query}", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert api.status_code == 200
    assert {event["id"] for event in api.json()["results"]} == expected
    page = user_client.get(f"/events/?{query}")
    assert page.status_code == 200
    assert _page_ids(page) == expected
    export = api_client.get(f"/api/v1/audit-events/export?format=ndjson&{query}", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert {json.loads(line)["id"] for line in b"".join(export.streaming_content).splitlines()} == expected
    assert matching(org, q) == expected


def test_traces_keep_those_with_a_matching_event(corpus, api_client, read_key):
    response = api_client.get("/api/v1/traces?" + urlencode({"q": "secret -decision:deny"}),
                              HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert [trace["trace_id"] for trace in response.json()["results"]] == ["trace-A"]


def test_a_bad_query_is_the_same_positioned_message_in_the_api_and_the_page(corpus, api_client, read_key, user_client):
    query = urlencode({"q": "tool:delete_* status:>=lots"})
    api = api_client.get(f"/api/v1/audit-events?{query}", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    message = "position 22: expected a number, optionally after >, >=, <, <= or = (status:>=500), found '>=lots'"
    assert api.status_code == 400
    assert api.json()["errors"] == {"q": [message]}
    page = user_client.get(f"/events/?{query}")
    assert page.status_code == 400
    html = page.content.decode()
    assert '<p class="field-error" id="q-error">' + escape(message) in html
    assert 'value="tool:delete_* status:&gt;=lots"' in html  # the query stays in the box to be fixed
