"""POST /api/v1/policy/simulate (SPEC §14): exact answers, 400s that name the rule and
field, read scope, one organization."""

import json

import pytest
from django.test import Client

from audit.accounts import services
from audit.accounts.models import AccessRecord
from tests.factories import store_events, wire_event

URL = "/api/v1/policy/simulate"
POLICY = {
    "name": "github-guardrails",
    "default": "allow",
    "rules": [
        {"id": "r-admin", "tool": "delete_*", "action": "allow", "conditions": {"actor": "admin@*"}},
        {"id": "r-del", "tool": "delete_*", "action": "deny"},
        {"id": "r-prod", "tool": "*", "action": "alert", "conditions": {"metadata.env": "production", "arguments.repo": "acme/*"}},
    ],
}


@pytest.fixture
def stored(org, other_org):
    store_events(
        org,
        wire_event(id="e1", tool="delete_repo", decision="allow", arguments={"repo": "acme/legacy"}),
        wire_event(id="e2", tool="delete_repo", actor="admin@company.com", decision="deny"),
        wire_event(id="e3", tool="list_issues", decision="allow", arguments={"repo": "acme/igris"}),
        wire_event(id="e4", tool="list_issues", decision="allow", arguments={"repo": "other/x"}),
        wire_event(id="e5", method="initialize", tool=None, arguments=None, decision="deny"),
    )
    store_events(other_org, wire_event(id="x1", tool="delete_repo", decision="allow"))


@pytest.fixture
def post(api_client, read_key):
    def _post(body, key=read_key, raw=False):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
        data = body if raw else json.dumps(body)
        return api_client.post(URL, data=data, content_type="application/json", **headers)

    return _post


def test_the_answer_is_exact(stored, post):
    response = post({"policy": POLICY, "query": ""})
    assert response.status_code == 200, response.content
    body = response.json()
    assert {k: body[k] for k in ("evaluated", "changed", "default_matched", "default_changed")} == {
        "evaluated": 4, "changed": 3, "default_matched": 1, "default_changed": 0,
    }
    assert {k: v for k, v in body["transitions"].items() if v} == {"allow->deny": 1, "deny->allow": 1, "allow->alert": 1}
    assert set(body["transitions"]) == {"allow->deny", "allow->alert", "deny->allow", "deny->alert", "alert->allow", "alert->deny"}
    assert body["by_rule"] == [
        {"id": "r-admin", "index": 0, "tool": "delete_*", "action": "allow", "matched": 1, "changed": 1},
        {"id": "r-del", "index": 1, "tool": "delete_*", "action": "deny", "matched": 1, "changed": 1},
        {"id": "r-prod", "index": 2, "tool": "*", "action": "alert", "matched": 1, "changed": 1},
    ]
    assert [(s["id"], s["from"], s["to"], s["rule"]) for s in body["samples"]] == [
        ("e3", "allow", "alert", "r-prod"), ("e2", "deny", "allow", "r-admin"), ("e1", "allow", "deny", "r-del"),
    ]
    assert body["samples"][0]["tool"] == "list_issues" and body["samples"][0]["timestamp"].endswith("Z")
    assert body["actors"] == [{"actor": "alice@company.com", "changed": 2}, {"actor": "admin@company.com", "changed": 1}]
    assert body["tools"] == [{"tool": "delete_repo", "changed": 2}, {"tool": "list_issues", "changed": 1}]
    assert body["evaluated_in"] in ("database", "python")


def test_the_query_chooses_the_calls(stored, post):
    body = post({"policy": POLICY, "query": "list_issues"}).json()
    assert (body["evaluated"], body["changed"]) == (2, 1)
    assert post({"policy": POLICY}).json()["evaluated"] == 4  # no query: every stored call


def test_an_invalid_policy_is_a_400_naming_the_rule_and_the_field(stored, post):
    policy = {**POLICY, "rules": [*POLICY["rules"], {"id": "r-bad", "tool": "x", "action": "deny", "conditions": {"user": "a"}}]}
    response = post({"policy": policy, "query": ""})
    assert response.status_code == 400
    body = response.json()
    assert body["problems"] == [{
        "rule": 3, "id": "r-bad", "field": "conditions.user",
        "message": "is not a condition field: use actor, slug, metadata.<key> or arguments.<key>[.<key>…]",
    }]
    assert list(body["errors"]) == ["policy.rules[3].conditions.user"]
    assert "rule 3 (id 'r-bad'), conditions.user" in body["detail"]


@pytest.mark.parametrize(
    "body, words",
    [
        ({"query": ""}, "send"),
        ({"policy": POLICY, "query": "", "extra": 1}, "nothing else"),
        ({"policy": POLICY, "query": 5}, "query must be a string"),
        ([POLICY], "send"),
        ("not json", "send JSON"),
    ],
)
def test_a_malformed_body_is_a_400(stored, post, body, words):
    response = post(body, raw=isinstance(body, str))
    assert response.status_code == 400 and words in response.json()["detail"]


def test_an_invalid_policy_document_names_the_policy(stored, post):
    body = post({"policy": ["not", "an", "object"]}).json()
    assert body["problems"][0]["rule"] is None and body["problems"][0]["field"] == "policy"


def test_an_oversized_body_is_a_413(stored, post):
    response = post({"policy": POLICY, "query": "x" * 600_000})
    assert response.status_code == 413


def test_read_scope_is_needed(stored, post, org):
    assert post({"policy": POLICY}, key=None).status_code == 401
    ingest_only = services.api_key_create(org=org, scopes=["ingest"], name="ingest")[1]
    response = post({"policy": POLICY}, key=ingest_only)
    assert response.status_code == 403 and "read" in response.json()["detail"]


def test_another_organization_replays_only_its_own_calls(stored, post, other_read_key):
    body = post({"policy": POLICY}, key=other_read_key).json()
    assert (body["evaluated"], [s["id"] for s in body["samples"]]) == (1, ["x1"])


def test_a_replay_is_recorded_in_the_access_log(stored, post, org):
    post({"policy": POLICY, "query": "delete"})
    record = AccessRecord.objects.get(org=org, action="policy-simulate")
    assert record.filters == {"q": ["delete"]} and record.path == URL


def test_a_logged_in_user_replays_with_a_csrf_token(stored, viewer):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(viewer)
    refused = browser.post(URL, data=json.dumps({"policy": POLICY}), content_type="application/json")
    assert refused.status_code == 403
    token = browser.get("/policy/").cookies["csrftoken"].value
    answered = browser.post(URL, data=json.dumps({"policy": POLICY}), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert answered.status_code == 200 and answered.json()["evaluated"] == 4


@pytest.mark.parametrize(
    "raw",
    [
        '{"policy": {"name": "p\\ud800", "default": "allow", "rules": []}}',
        '{"policy": {"name": "p", "default": "allow", "rules": [{"id": "r\\ud800", "tool": "*", "action": "deny", "conditions": {"arguments.k\\u0000": "v"}}]}}',
        '{"policy": {"name": "p", "default": "allow", "rules": [{"id": "r", "tool": "*\\udfff", "action": "deny", "conditions": {"metadata.k": "\\u0000"}}]}}',
        '{"policy": {"name": "p", "default": "allow", "rules": [{"id": "r", "tool": "*", "action": "deny", "conditions": {"arguments.k\\ud800": {"\\u0000": 1}}}]}}',
    ],
)
def test_text_postgresql_cannot_hold_is_a_400_never_a_500(stored, post, raw):
    response = post(raw, raw=True)
    assert response.status_code == 400
    assert response.json()["problems"]


@pytest.mark.parametrize("query", ["\u0000", "a\ud800"])
def test_a_query_postgresql_cannot_hold_is_a_400(stored, api_client, read_key, query):
    body = json.dumps({"policy": POLICY, "query": query})
    response = api_client.post(URL, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert response.status_code == 400
