"""Saved views in the browser: listed beside the filter panel, saved from the current
filter with a CSRF-protected POST, deleted by their owner only."""

import pytest
from django.test import Client

from audit.accounts import services
from audit.explore.models import SavedView


@pytest.fixture
def colleague(org):
    return services.user_create(org=org, username="colleague", password="colleague-pass-123")


def test_save_the_current_filter_and_find_it_beside_the_panel(user_client, viewer):
    page = user_client.get("/events/?decision=deny&q=tool%3Adelete_%2A").content.decode()
    assert '<input type="hidden" name="query" value="decision=deny&amp;q=tool%3Adelete_%2A">' in page
    response = user_client.post("/views/", {"name": "Deletes denied", "query": "decision=deny&q=tool%3Adelete_%2A",
                                            "next": "/events/"})
    assert response.status_code == 302 and response["Location"] == "/events/?decision=deny&q=tool%3Adelete_%2A"
    view = SavedView.objects.get()
    assert (view.owner_user, view.shared) == (viewer, False)
    page = user_client.get(response["Location"]).content.decode()
    assert "Saved the view “Deletes denied”." in page
    assert '<a href="/events/?decision=deny&amp;q=tool%3Adelete_%2A" aria-current="true"' in page


def test_shared_views_show_to_colleagues_who_cannot_delete_them(user_client, colleague):
    user_client.post("/views/", {"name": "Team view", "query": "q=secret", "shared": "on"})
    user_client.post("/views/", {"name": "Private view", "query": "q=mine"})
    other = Client()
    other.force_login(colleague)
    page = other.get("/traces/").content.decode()  # the trace list takes the same filters
    assert '<a href="/traces/?q=secret"' in page and "Private view" not in page
    assert "Delete the view" not in page
    view = SavedView.objects.get(name="Team view")
    other.post(f"/views/{view.pk}/delete/")
    assert SavedView.objects.filter(pk=view.pk).exists()
    user_client.post(f"/views/{view.pk}/delete/")
    assert not SavedView.objects.filter(pk=view.pk).exists()


def test_another_organizations_view_cannot_be_deleted_or_seen(user_client, other_org):
    stranger = services.user_create(org=other_org, username="stranger", password="stranger-pass-123")
    view = SavedView.objects.create(org=other_org, owner_user=stranger, name="Globex only", query="", shared=True)
    assert "Globex only" not in user_client.get("/events/").content.decode()
    assert user_client.post(f"/views/{view.pk}/delete/").status_code == 404
    assert SavedView.objects.filter(pk=view.pk).exists()


def test_an_invalid_view_is_not_saved_and_says_why(user_client):
    response = user_client.post("/views/", {"name": "", "query": "decision=deny", "next": "/events/"}, follow=True)
    assert "The view was not saved: name must be 1–100 characters" in response.content.decode()
    assert response.redirect_chain[-1][0] == "/events/?decision=deny"
    assert not SavedView.objects.exists()
    assert user_client.get("/views/").status_code == 405


def test_saving_needs_the_csrf_token(viewer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    assert client.post("/views/", {"name": "x", "query": ""}).status_code == 403
    assert not SavedView.objects.exists()


def test_the_redirect_stays_on_this_site(user_client):
    response = user_client.post("/views/", {"name": "x", "query": "", "next": "https://evil.example/events/"})
    assert response["Location"] == "/events/"
