"""The alerts API (SPEC §12): admins only (a signed-in admin or an `admin` key), secrets
write-only, addresses checked, another organization's ids 404, constant queries per page."""

import json

import pytest

from audit.alerts import services
from audit.alerts.models import AlertRule, Delivery, Destination

SECRET = "whsec_" + "a" * 32  # 24 bytes of base64


@pytest.fixture
def as_admin(api_client, admin_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    return api_client


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def patch(client, path, body):
    return client.patch(path, data=json.dumps(body), content_type="application/json")


def test_a_webhook_secret_is_made_shown_once_and_never_again(as_admin, receiver):
    created = post(as_admin, "/api/v1/destinations", {"name": "SOC", "kind": "webhook", "url": receiver.url})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["kind"] == "webhook" and body["paused"] is False
    shown = as_admin.get(f"/api/v1/destinations/{body['id']}").json()
    listed = as_admin.get("/api/v1/destinations").json()["results"]
    assert "secret" not in shown and "secret" not in listed[0]
    stored = Destination.objects.get()
    assert body["secret"] not in stored.sealed_secret  # sealed at rest


def test_a_given_secret_or_token_is_not_echoed(as_admin, receiver):
    webhook = post(as_admin, "/api/v1/destinations", {"name": "a", "kind": "webhook", "url": receiver.url,
                                                      "secret": SECRET})
    hec = post(as_admin, "/api/v1/destinations", {"name": "b", "kind": "splunk_hec", "url": receiver.url,
                                                  "token": "hec-token-1"})
    assert webhook.status_code == hec.status_code == 201
    assert "secret" not in webhook.json() and "token" not in hec.json()
    assert SECRET not in json.dumps(as_admin.get("/api/v1/destinations").json())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "webhook", "url": "https://10.0.0.8/hook"}, "url"),
        ({"name": "x", "kind": "webhook", "url": "https://localhost/hook"}, "url"),  # /etc/hosts: 127.0.0.1
        ({"name": "x", "kind": "webhook", "url": "https://[::ffff:169.254.169.254]/latest"}, "url"),
        ({"name": "x", "kind": "webhook", "url": "ftp://example.com/x"}, "url"),
        ({"name": "x", "kind": "webhook", "url": "http://1.1.1.1/hook"}, "url"),  # public, but plain http
        ({"name": "x", "kind": "webhook", "url": "https://user:pw@1.1.1.1/hook"}, "url"),
        ({"name": "x", "kind": "webhook", "url": "https://1.1.1.1/hook", "secret": "hunter2"}, "secret"),
        ({"name": "x", "kind": "splunk_hec", "url": "https://1.1.1.1/services/collector"}, "token"),
        ({"name": "x", "kind": "slack", "url": "https://1.1.1.1/services/T/B/X", "secret": SECRET}, "secret"),
        ({"name": "x", "kind": "pager", "url": "https://1.1.1.1/"}, "kind"),
        ({"name": "", "kind": "webhook", "url": "https://1.1.1.1/"}, "name"),
    ],
)
def test_bad_destinations_are_400_naming_the_field(as_admin, body, field):
    response = post(as_admin, "/api/v1/destinations", body)
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not Destination.objects.exists()


def test_a_slack_url_is_sealed_and_shown_only_as_its_host(as_admin, receiver):
    url = receiver.url + "/services/T000/B000/XXXXSECRET"
    response = post(as_admin, "/api/v1/destinations", {"name": "Slack", "kind": "slack", "url": url})
    assert response.status_code == 201
    assert response.json()["url"] == f"http://127.0.0.1:{receiver.port}/…"
    assert "XXXXSECRET" not in json.dumps(as_admin.get("/api/v1/destinations").json())


def test_rules_are_checked_and_match_from_now(as_admin, org, receiver):
    destination_id = post(as_admin, "/api/v1/destinations", {"name": "SOC", "kind": "webhook", "url": receiver.url}
                          ).json()["id"]
    org.chain_seq = 41
    org.save()
    response = post(as_admin, "/api/v1/alert-rules", {"name": "Deletes", "query": "delete_repo",
                                                      "destination": destination_id})
    assert response.status_code == 201, response.json()
    assert response.json() | {"id": 0, "created_at": ""} == {
        "id": 0, "name": "Deletes", "query": "delete_repo", "destination": destination_id, "enabled": True,
        "position": 41, "created_at": "",
    }
    assert post(as_admin, "/api/v1/alert-rules", {"name": "x", "query": "  ", "destination": destination_id}
                ).json()["errors"].keys() == {"query"}
    assert post(as_admin, "/api/v1/alert-rules", {"name": "x", "query": "a", "destination": 999999}
                ).json()["errors"] == {"destination": ["no such destination"]}


def test_a_stream_does_not_go_to_slack(as_admin, receiver):
    slack = post(as_admin, "/api/v1/destinations", {"name": "S", "kind": "slack", "url": receiver.url}).json()
    response = post(as_admin, "/api/v1/alert-rules", {"name": "All", "query": "*", "destination": slack["id"]})
    assert response.status_code == 400 and "destination" in response.json()


def test_pause_resume_and_disable_through_patch(as_admin, org, receiver):
    destination = post(as_admin, "/api/v1/destinations", {"name": "SOC", "kind": "webhook", "url": receiver.url}
                       ).json()
    path = f"/api/v1/destinations/{destination['id']}"
    paused = patch(as_admin, path, {"paused": True}).json()
    assert paused["paused"] is True and paused["paused_reason"] == "Paused by an admin"
    assert patch(as_admin, path, {"paused": False}).json()["paused"] is False
    assert patch(as_admin, path, {"kind": "slack"}).status_code == 400
    rule = post(as_admin, "/api/v1/alert-rules", {"name": "D", "query": "delete_repo",
                                                  "destination": destination["id"]}).json()
    assert patch(as_admin, f"/api/v1/alert-rules/{rule['id']}", {"enabled": False}).json()["enabled"] is False
    assert patch(as_admin, f"/api/v1/alert-rules/{rule['id']}", {"name": "Renamed"}).json()["enabled"] is False
    assert as_admin.delete(path).status_code == 400  # a rule still sends there
    assert as_admin.delete(f"/api/v1/alert-rules/{rule['id']}").status_code == 204
    assert as_admin.delete(path).status_code == 204
    assert not Destination.objects.exists() and not AlertRule.objects.exists()


def test_send_test_and_the_deliveries_list(as_admin, receiver):
    destination = post(as_admin, "/api/v1/destinations", {"name": "SOC", "kind": "webhook", "url": receiver.url}
                       ).json()
    receiver.statuses = [500]
    failed = as_admin.post(f"/api/v1/destinations/{destination['id']}/test").json()
    sent = as_admin.post(f"/api/v1/destinations/{destination['id']}/test").json()
    assert (failed["status"], failed["last_status_code"], sent["status"]) == ("failed", 500, "delivered")
    assert sent["webhook_id"] == receiver.requests[1].headers["webhook-id"]
    listed = as_admin.get("/api/v1/deliveries", {"destination": destination["id"]}).json()["results"]
    assert [d["status"] for d in listed] == ["delivered", "failed"]
    assert listed[1]["attempts"] == [{**listed[1]["attempts"][0], "status_code": 500, "ok": False}]
    assert as_admin.get("/api/v1/deliveries", {"status": "failed"}).json()["results"][0]["id"] == failed["id"]
    assert as_admin.get("/api/v1/deliveries", {"status": "lost"}).status_code == 400
    assert as_admin.get("/api/v1/deliveries", {"rule": "x"}).status_code == 400
    assert as_admin.get("/api/v1/deliveries", {"colour": "red"}).status_code == 400


def test_deliveries_page_costs_constant_queries(as_admin, org, receiver, django_assert_num_queries):
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    for _ in range(3):
        services.destination_test(destination=destination)
    as_admin.get("/api/v1/deliveries")
    with django_assert_num_queries(3):  # the key (its last use is recent), the page, its attempts
        assert len(as_admin.get("/api/v1/deliveries").json()["results"]) == 3
    for _ in range(3):
        services.destination_test(destination=destination)
    with django_assert_num_queries(3):
        assert len(as_admin.get("/api/v1/deliveries").json()["results"]) == 6


def test_deliveries_page_with_a_cursor(as_admin, org, receiver):
    destination, _ = services.destination_create(org=org, name="SOC", kind="webhook", url=receiver.url)
    for _ in range(3):
        services.destination_test(destination=destination)
    first = as_admin.get("/api/v1/deliveries", {"page_size": "2"}).json()
    second = as_admin.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1 and second["next"] is None


def test_only_admins_may(api_client, user_client, admin_user, read_key, ingest_key):
    for key in (read_key, ingest_key):
        response = api_client.get("/api/v1/destinations", HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 403 and "admin" in response.json()["detail"]
    assert user_client.get("/api/v1/alert-rules").status_code == 403  # a viewer
    assert api_client.get("/api/v1/alert-rules").status_code in (401, 403)  # nobody
    user_client.force_login(admin_user)
    assert user_client.get("/api/v1/alert-rules").status_code == 200
    assert user_client.get("/api/v1/deliveries").status_code == 200


def test_a_signed_in_admin_needs_the_csrf_token_to_write(org, admin_user, settings):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post("/api/v1/destinations", data="{}", content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_another_organization_sees_nothing(as_admin, api_client, org, other_org, receiver):
    theirs, _ = services.destination_create(org=other_org, name="Theirs", kind="webhook", url=receiver.url)
    rule = services.rule_create(org=other_org, name="Theirs", query="x", destination=theirs)
    services.destination_test(destination=theirs)
    for path in (f"/api/v1/destinations/{theirs.pk}", f"/api/v1/alert-rules/{rule.pk}"):
        assert as_admin.get(path).status_code == 404
        assert patch(as_admin, path, {"name": "mine"}).status_code == 404
        assert as_admin.delete(path).status_code == 404
    assert as_admin.post(f"/api/v1/destinations/{theirs.pk}/test").status_code == 404
    assert len(receiver.requests) == 1  # only their own test
    for path in ("/api/v1/destinations", "/api/v1/alert-rules", "/api/v1/deliveries"):
        assert as_admin.get(path).json()["results"] == []
    mine = post(as_admin, "/api/v1/destinations", {"name": "Mine", "kind": "webhook", "url": receiver.url}).json()
    assert post(as_admin, "/api/v1/alert-rules", {"name": "x", "query": "x", "destination": theirs.pk}
                ).json()["errors"] == {"destination": ["no such destination"]}
    assert patch(as_admin, f"/api/v1/destinations/{mine['id']}", {"name": "Mine 2"}).status_code == 200
    assert Destination.objects.get(pk=theirs.pk).name == "Theirs" and Delivery.objects.filter(org=org).count() == 0
