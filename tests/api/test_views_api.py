"""/api/v1/views and /api/v1/views/<id> (SPEC §9): CRUD, who sees what, validation."""

import pytest

from audit.accounts import services

URL = "/api/v1/views"


@pytest.fixture
def as_key(api_client, read_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    return api_client


def _key_client(org, name):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {services.api_key_create(org=org, scopes=['read'], name=name)[1]}")
    return client


def test_create_read_update_delete(as_key):
    created = as_key.post(URL, {"name": "Denies", "query": "?decision=deny&q=tool%3Adelete_*"}, format="json")
    assert created.status_code == 201
    view = created.json()
    assert view["name"] == "Denies" and view["shared"] is False and view["owner"].startswith("key:")
    assert view["query"] == "decision=deny&q=tool%3Adelete_%2A"  # as /events/ writes it
    assert as_key.get(f"{URL}/{view['id']}").json() == view
    changed = as_key.patch(f"{URL}/{view['id']}", {"shared": True, "name": "Denies (all)"}, format="json")
    assert changed.status_code == 200 and changed.json()["shared"] is True and changed.json()["name"] == "Denies (all)"
    assert [v["id"] for v in as_key.get(URL).json()] == [view["id"]]
    assert as_key.delete(f"{URL}/{view['id']}").status_code == 204
    assert as_key.get(f"{URL}/{view['id']}").status_code == 404


def test_private_views_are_the_owners_shared_ones_everyones_and_only_the_owner_changes(org, as_key, user_client):
    mine = as_key.post(URL, {"name": "mine", "query": "decision=deny"}, format="json").json()
    shared = as_key.post(URL, {"name": "ours", "query": "q=secret", "shared": True}, format="json").json()
    other_key = _key_client(org, "other")
    assert [v["name"] for v in other_key.get(URL).json()] == ["ours"]
    assert other_key.get(f"{URL}/{mine['id']}").status_code == 404
    assert other_key.patch(f"{URL}/{shared['id']}", {"name": "taken"}, format="json").status_code == 403
    assert other_key.delete(f"{URL}/{shared['id']}").status_code == 403
    # A signed-in member sees the shared view too, and owns what it creates.
    assert [v["name"] for v in user_client.get(URL).json()] == ["ours"]
    own = user_client.post(URL, {"name": "viewer's", "query": ""}, content_type="application/json")
    assert own.status_code == 201 and own.json()["owner"] == "user:viewer"
    assert [v["name"] for v in as_key.get(URL).json()] == ["mine", "ours"]  # the viewer's stays private


def test_a_session_write_needs_the_csrf_token(viewer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    assert client.post(URL, {"name": "x"}, content_type="application/json").status_code == 403


def test_another_organization_never_sees_them(as_key, other_org):
    view = as_key.post(URL, {"name": "ours", "query": "", "shared": True}, format="json").json()
    stranger = _key_client(other_org, "stranger")
    assert stranger.get(URL).json() == []
    for method in ("get", "patch", "delete"):
        assert getattr(stranger, method)(f"{URL}/{view['id']}", format="json").status_code == 404


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"query": "decision=deny"}, "name", "is required"),
        ({"name": "  ", "query": ""}, "name", "must be 1–100 characters"),
        ({"name": "x" * 101}, "name", "must be 1–100 characters"),
        ({"name": "x", "query": "decision=maybe"}, "query", "decision: Select a valid choice."),
        ({"name": "x", "query": "q=status:>=lots"}, "query", "q: position 8: expected a number"),
        ({"name": "x", "query": "colour=red"}, "query", "colour: not a filter of /events/"),
        ({"name": "x", "shared": "yes"}, "shared", "must be true or false"),
        ({"name": "x", "owner": "someone"}, "owner", "is not a field of a view"),
    ],
)
def test_invalid_fields_are_a_400_naming_them(as_key, body, field, message):
    response = as_key.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][field][0].startswith(message), response.json()


def test_keys_without_read_and_anonymous_callers_are_refused(org, api_client):
    assert api_client.get(URL).status_code in (401, 403)
    ingest_only = services.api_key_create(org=org, scopes=["ingest"], name="gw")[1]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {ingest_only}")
    assert api_client.get(URL).status_code == 403
    assert api_client.post(URL, {"name": "x"}, format="json").status_code == 403


def test_listing_is_a_fixed_number_of_queries(as_key, django_assert_num_queries):
    for n in range(5):
        as_key.post(URL, {"name": f"v{n}", "query": "", "shared": n % 2 == 0}, format="json")
    as_key.get(URL)
    with django_assert_num_queries(2):  # the key, the views with their owners
        assert len(as_key.get(URL).json()) == 5
