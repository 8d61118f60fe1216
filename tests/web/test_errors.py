"""Every error has its answer: JSON under /api/ (DEBUG on or off), a Lens page with a way back elsewhere."""

import pytest
from django.test import Client

from audit.explore import selectors

MANY = "&".join(["decision=deny"] * 1001)


@pytest.fixture
def client_500(viewer):
    """A client that gets the server's answer to an exception instead of the exception."""
    client = Client(raise_request_exception=False)
    client.force_login(viewer)
    return client


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/nope", "/api/v1/traces/a\x01b", "/api/v1/audit-events/a/b"])
def test_an_unknown_api_path_is_the_api_json_404_with_debug_on_or_off(settings, api_client, read_key, path, debug):
    settings.DEBUG = debug
    response = api_client.get(path, HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/api/v1/audit-events", "/api/v1/traces", "/api/v1/audit-events/export"])
def test_1001_repeated_parameters_are_a_json_400_in_the_api(settings, client_500, read_key, path, debug):
    settings.DEBUG = debug
    response = client_500.get(f"{path}?{MANY}", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert response.status_code == 400
    assert response.json() == {"detail": "Too many query parameters: at most 1000."}


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/events/", "/traces/", "/login/"])
def test_1001_repeated_parameters_are_a_lens_400_page(settings, client_500, path, debug):
    settings.DEBUG = debug
    response = client_500.get(f"{path}?{MANY}")
    page = response.content.decode()
    assert response.status_code == 400 and "Too many query parameters" in page and "Back to events" in page


def test_a_missing_page_is_a_lens_404_with_a_way_back(client_500):
    response = client_500.get("/no-such-page/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "Not found" in page and 'href="/events/"' in page and 'href="/traces/"' in page
    assert "Content-Security-Policy" in response.headers


def test_a_missing_event_is_the_same_lens_404(client_500):
    response = client_500.get("/events/no-such-event/")
    assert response.status_code == 404 and "Back to events" in response.content.decode()


def test_a_refused_form_is_a_lens_403(viewer):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "viewer", "password": "viewer-pass-123"})
    page = response.content.decode()
    assert response.status_code == 403 and "The form expired" in page and "Back to events" in page


def test_a_bad_host_is_a_lens_400(client_500):
    response = client_500.get("/events/", HTTP_HOST="evil.example")
    assert response.status_code == 400 and "Back to events" in response.content.decode()


def test_a_server_error_is_a_lens_500_page_and_json_in_the_api(client_500, read_key, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "event_list", broken)
    page = client_500.get("/events/")
    assert page.status_code == 500 and "Something went wrong" in page.content.decode()
    assert "Back to events" in page.content.decode() and "a bug" not in page.content.decode()
    api = client_500.get("/api/v1/audit-events", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert api.status_code == 500 and api.json()["detail"].startswith("Server error")
