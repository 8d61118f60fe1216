"""/alerts/ for admins: see and manage destinations, rules and deliveries with forms."""

import pytest
from django.test import Client

from audit.alerts import services
from audit.alerts.models import AlertRule, Destination

def test_viewers_get_403_and_no_header_link(user_client, admin_user):
    assert user_client.get("/alerts/").status_code == 403
    assert b'href="/alerts/"' not in user_client.get("/events/").content
    admin = Client()
    admin.force_login(admin_user)
    assert b'href="/alerts/"' in admin.get("/events/").content
    assert Client().get("/alerts/").status_code == 302  # to the login


def test_adding_a_webhook_shows_its_secret_once(admin_user_client, receiver):
    response = admin_user_client.post("/alerts/destinations/", {"name": "SOC", "kind": "webhook", "url": receiver.url})
    assert response.status_code == 200
    secret = response.context["new_secret"]["secret"]
    assert secret.startswith("whsec_") and secret.encode() in response.content
    again = admin_user_client.get("/alerts/")
    assert secret.encode() not in again.content and b"SOC" in again.content


def test_a_private_url_is_a_form_error(admin_user_client):
    response = admin_user_client.post(
        "/alerts/destinations/", {"name": "x", "kind": "webhook", "url": "https://localhost/hook"}
    )
    assert response.status_code == 400
    assert "not a public address" in response.context["destination_form"].errors["url"][0]
    assert not Destination.objects.exists()


def test_rules_and_destinations_are_managed_with_forms(admin_user_client, org, receiver):
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    response = admin_user_client.post(
        "/alerts/rules/", {"name": "Deletes", "query": "delete_repo", "destination": destination.pk, "enabled": "on"}
    )
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    admin_user_client.post(f"/alerts/rules/{rule.pk}/disable/")
    assert not AlertRule.objects.get().enabled
    admin_user_client.post(f"/alerts/destinations/{destination.pk}/pause/")
    assert Destination.objects.get().paused
    page = admin_user_client.get("/alerts/")
    assert b"Paused by an admin" in page.content and b"Enable" in page.content
    admin_user_client.post(f"/alerts/destinations/{destination.pk}/resume/")
    tested = admin_user_client.post(f"/alerts/destinations/{destination.pk}/test/", follow=True)
    assert b"Test to SOC: HTTP 200." in tested.content and len(receiver.requests) == 1
    assert b"lens_test_" in tested.content  # the delivery is listed, with its webhook-id
    refused = admin_user_client.post(f"/alerts/destinations/{destination.pk}/delete/", follow=True)
    assert b"alert rules still send here" in refused.content
    admin_user_client.post(f"/alerts/rules/{rule.pk}/delete/")
    admin_user_client.post(f"/alerts/destinations/{destination.pk}/delete/")
    assert not Destination.objects.exists()


def test_a_bad_rule_query_is_a_form_error(admin_user_client, org, receiver):
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    response = admin_user_client.post("/alerts/rules/", {"name": "x", "query": " ", "destination": destination.pk})
    assert response.status_code == 400 and "query" in response.context["rule_form"].errors


def test_another_organizations_ids_are_404(admin_user_client, other_org, receiver):
    theirs, _ = services.destination_create(org=other_org, name="Theirs", kind="webhook", url=receiver.url)
    rule = services.rule_create(org=other_org, name="Theirs", query="x", destination=theirs)
    for path in (f"/alerts/destinations/{theirs.pk}/pause/", f"/alerts/destinations/{theirs.pk}/test/",
                 f"/alerts/rules/{rule.pk}/delete/"):
        assert admin_user_client.post(path).status_code == 404
    assert not Destination.objects.get().paused and AlertRule.objects.exists() and receiver.requests == []
    assert b"Theirs" not in admin_user_client.get("/alerts/").content
    response = admin_user_client.post("/alerts/rules/", {"name": "x", "query": "x", "destination": theirs.pk})
    assert response.status_code == 400 and "destination" in response.context["rule_form"].errors


def test_forms_need_the_csrf_token(admin_user, receiver):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post("/alerts/destinations/", {"name": "x", "kind": "webhook", "url": receiver.url}
                       ).status_code == 403
    assert not Destination.objects.exists()


def test_the_page_costs_constant_queries(admin_user_client, org, receiver, django_assert_num_queries):
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    services.rule_create(org=org, name="Deletes", query="delete_repo", destination=destination)
    services.destination_test(destination=destination)
    admin_user_client.get("/alerts/")
    # session, user, membership; destinations, rules, deliveries, their attempts, the rule form's destinations
    with django_assert_num_queries(8):
        admin_user_client.get("/alerts/")
    for _ in range(3):
        services.destination_test(destination=destination)
    with django_assert_num_queries(8):
        assert len(admin_user_client.get("/alerts/").context["deliveries"]) == 4


def test_a_bad_cursor_is_shown_not_a_500(admin_user_client):
    response = admin_user_client.get("/alerts/", {"cursor": "nope"})
    assert response.status_code == 400 and b"is not a cursor Lens gave out" in response.content


@pytest.mark.parametrize("action", ["explode", "DROP"])
def test_unknown_actions_are_404(admin_user_client, org, receiver, action):
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    assert admin_user_client.post(f"/alerts/destinations/{destination.pk}/{action}/").status_code == 404
