"""The legal holds API (SPEC §11): admins only, another organization's hold is a 404, placing
and releasing are in the access log, a bad query is a 400 naming it."""

import json

import pytest

from audit.accounts.models import AccessRecord
from audit.retention.holds import hold_place
from audit.retention.models import LegalHold

URL = "/api/v1/holds"


@pytest.fixture
def as_admin(api_client, admin_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    return api_client


def _post(client, body):
    return client.post(URL, data=json.dumps(body), content_type="application/json")


def test_place_list_and_release_a_hold(as_admin, org):
    response = _post(as_admin, {"reason": "case 42", "query": "actor:bob@x.com decision:deny"})
    assert response.status_code == 201
    hold = response.json()
    assert (hold["reason"], hold["query"]) == ("case 42", "actor:bob@x.com decision:deny")
    assert hold["created_by"].startswith("key:")

    listed = as_admin.get(URL).json()
    assert [item["id"] for item in listed["results"]] == [hold["id"]]

    assert as_admin.delete(f"{URL}/{hold['id']}").status_code == 204
    assert as_admin.get(URL).json()["results"] == []
    assert as_admin.delete(f"{URL}/{hold['id']}").status_code == 404  # released already
    assert LegalHold.objects.get(pk=hold["id"]).released_at is not None
    records = AccessRecord.objects.filter(org=org).order_by("id")
    assert [(r.action, r.target, r.filters) for r in records] == [
        ("hold-place", str(hold["id"]), {"q": ["actor:bob@x.com decision:deny"]}),
        ("hold-release", str(hold["id"]), {"q": ["actor:bob@x.com decision:deny"]}),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "actor:bob"}, "reason"),
        ({"reason": "x"}, "query"),
        ({"reason": "x", "query": 'actor:"unclosed'}, "query"),
        ({"reason": "x", "query": "   "}, "query"),
        ({"reason": "x", "query": "x" * 2001}, "query"),
    ],
)
def test_bad_holds_are_400_naming_the_field(as_admin, body, field):
    response = _post(as_admin, body)
    assert response.status_code == 400
    assert field in json.dumps(response.json())
    assert not LegalHold.objects.exists()


def test_only_admins_hold(api_client, read_key, user_client):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert api_client.get(URL).status_code == 403
    assert _post(api_client, {"reason": "x", "query": "y"}).status_code == 403
    assert user_client.get(URL).status_code == 403


def test_another_organizations_hold_is_404(as_admin, other_org):
    theirs = hold_place(org=other_org, reason="theirs", query="actor:x", by="test")
    assert as_admin.delete(f"{URL}/{theirs.pk}").status_code == 404
    assert as_admin.get(URL).json()["results"] == []
    assert LegalHold.objects.get(pk=theirs.pk).released_at is None


def test_admins_set_retention_in_the_browser(admin_user_client, viewer, org):
    from django.test import Client

    from audit.retention.models import RetentionPolicy

    user_client = Client()
    user_client.force_login(viewer)
    page = admin_user_client.get("/integrity/").content.decode()
    assert 'action="/integrity/retention/"' in page
    response = admin_user_client.post("/integrity/retention/", {"keep": "90d", "keep_arguments": "30d"})
    assert response.status_code == 302
    policy = RetentionPolicy.objects.get(org=org)
    assert (policy.keep_seconds, policy.keep_arguments_seconds) == (90 * 86400, 30 * 86400)
    page = admin_user_client.get("/integrity/").content.decode()
    assert "Events are kept 90d, their arguments 30d" in page
    admin_user_client.post("/integrity/retention/", {"keep": "soon", "keep_arguments": ""})
    assert "not a duration" in admin_user_client.get("/integrity/").content.decode()
    assert RetentionPolicy.objects.get(org=org).keep_seconds == 90 * 86400
    assert user_client.post("/integrity/retention/", {"keep": "1d"}).status_code == 403
    assert 'action="/integrity/retention/"' not in user_client.get("/integrity/").content.decode()


def test_holds_are_in_the_api_schema(client, db):
    import yaml

    schema = yaml.safe_load(client.get("/api/v1/schema").content)
    holds = schema["paths"]["/api/v1/holds"]
    assert {"get", "post"} <= set(holds) and "delete" in schema["paths"]["/api/v1/holds/{id}"]
    assert "404" in schema["paths"]["/api/v1/holds/{id}"]["delete"]["responses"]
    event = schema["components"]["schemas"]["Event"]["properties"]
    assert event["arguments_removed"]["type"] == "boolean" and event["arguments_sha256"]["nullable"] is True
