"""Reading or exporting events is recorded (who, what, which filters) and only the
organization's admins (signed in, or with a key that has the `admin` scope) can read that record."""

from urllib.parse import quote

import pytest

from audit.accounts import services
from audit.models import AccessRecord
from tests.factories import store_event

ACCESS_LOG = "/api/v1/access-log"


@pytest.fixture
def stored(org, other_org):
    store_event(org, id="evt-1", trace_id="trace/7f3a")
    store_event(other_org, id="evt-9", trace_id="theirs")


@pytest.fixture
def admin_client(org, client):
    admin = services.user_create(org=org, username="admin", password="admin-pass-123", role="admin")
    client.force_login(admin)
    return client


@pytest.fixture
def key_with_name(org):
    return services.api_key_create(org=org, scopes=["read"], name="siem")[1]


READS = [
    ("/api/v1/audit-events", {"decision": ["deny", "alert"], "metadata.env": "production"}, "event-list", ""),
    ("/api/v1/audit-events", {"actor": "alice@company.com", "format": "csv"}, "event-list", ""),
    ("/api/v1/audit-events/evt-1", {}, "event-view", "evt-1"),
    ("/api/v1/audit-events/export", {"format": "csv", "since": "7d", "q": "github"}, "export", ""),
    ("/api/v1/traces", {"slug": "github-prod"}, "trace-list", ""),
    (f"/api/v1/traces/{quote('trace/7f3a', safe='')}", {}, "trace-view", "trace/7f3a"),
    ("/api/v1/integrity", {}, "integrity", ""),
    ("/api/v1/conflicts", {}, "conflict-list", ""),
]


@pytest.mark.parametrize("path, params, action, target", READS, ids=[r[2] + str(i) for i, r in enumerate(READS)])
def test_every_read_through_a_key_is_recorded_with_its_filters(api_client, stored, org, key_with_name, path,
                                                               params, action, target):
    response = api_client.get(path, params, HTTP_AUTHORIZATION=f"Bearer {key_with_name}", REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 200
    record = AccessRecord.objects.get()
    assert record.org == org
    assert record.actor.startswith("key:") and record.actor.endswith("(siem)")
    assert record.api_key is not None and record.user is None
    assert record.address == "192.0.2.7"
    assert (record.action, record.target) == (action, target)
    assert record.path == path.replace("%2F", "/") or record.path == path
    assert record.filters == {k: v if isinstance(v, list) else [v] for k, v in params.items() if k != "format"}
    assert record.format == params.get("format", "")


def test_reads_by_a_signed_in_user_are_recorded_with_the_login(client, viewer, stored, org):
    client.force_login(viewer)
    assert client.get("/api/v1/audit-events/export", {"tool": "list_issues"}).status_code == 200
    record = AccessRecord.objects.get()
    assert (record.actor, record.user, record.api_key) == ("user:viewer", viewer, None)
    assert record.filters == {"tool": ["list_issues"]}


def test_refused_reads_and_ingest_are_not_reads(api_client, stored, read_key, ingest_key, other_read_key):
    assert api_client.get("/api/v1/audit-events/evt-9", HTTP_AUTHORIZATION=f"Bearer {read_key}").status_code == 404
    assert api_client.get("/api/v1/audit-events", {"since": "soon"},
                          HTTP_AUTHORIZATION=f"Bearer {read_key}").status_code == 400
    assert api_client.get("/api/v1/audit-events", HTTP_AUTHORIZATION=f"Bearer {ingest_key}").status_code == 403
    assert AccessRecord.objects.count() == 0


def test_admins_see_their_organizations_reads_newest_first(admin_client, api_client, stored, org, read_key,
                                                           other_read_key):
    api_client.get("/api/v1/audit-events", {"decision": "deny"}, HTTP_AUTHORIZATION=f"Bearer {read_key}")
    api_client.get("/api/v1/audit-events/export", {"format": "ndjson"}, HTTP_AUTHORIZATION=f"Bearer {read_key}")
    api_client.get("/api/v1/audit-events", HTTP_AUTHORIZATION=f"Bearer {other_read_key}")  # the other org's
    response = admin_client.get(ACCESS_LOG)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["action"], r["filters"], r["format"]) for r in results] == [
        ("export", {}, "ndjson"),
        ("event-list", {"decision": ["deny"]}, ""),
    ]
    assert all(r["actor"].startswith("key:") and r["path"].startswith("/api/v1/") for r in results)


def test_access_log_pages_with_a_cursor(admin_client, api_client, stored, read_key):
    for _ in range(3):
        api_client.get("/api/v1/audit-events/evt-1", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    first = admin_client.get(ACCESS_LOG, {"page_size": "2"}).json()
    second = admin_client.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1
    assert admin_client.get(ACCESS_LOG, {"cursor": "nonsense"}).status_code == 400
    assert admin_client.get(ACCESS_LOG, {"actor": "x"}).status_code == 400


def test_only_admins_read_the_access_log(client, api_client, viewer, read_key, ingest_key, stored):
    client.force_login(viewer)
    assert client.get(ACCESS_LOG).status_code == 403  # a viewer of the same organization
    client.logout()
    assert client.get(ACCESS_LOG).status_code in (401, 403)  # nobody
    for key in (read_key, ingest_key):  # keys without the admin scope
        response = api_client.get(ACCESS_LOG, HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 403 and "'admin' scope" in response.json()["detail"]


def test_a_key_with_the_admin_scope_reads_its_own_organizations_access_log(api_client, stored, org, other_org,
                                                                            read_key, other_read_key):
    api_client.get("/api/v1/audit-events", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    api_client.get("/api/v1/audit-events", HTTP_AUTHORIZATION=f"Bearer {other_read_key}")
    _, admin_key = services.api_key_create(org=org, scopes=["admin"], name="ops")
    response = api_client.get(ACCESS_LOG, HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    assert response.status_code == 200
    assert [record["path"] for record in response.json()["results"]] == ["/api/v1/audit-events"]
    assert AccessRecord.objects.filter(org=other_org).count() == 1  # theirs exists, and is not shown


def test_access_log_read_costs_constant_queries(admin_client, api_client, stored, read_key,
                                                django_assert_num_queries):
    for _ in range(5):
        api_client.get("/api/v1/audit-events", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    admin_client.get(ACCESS_LOG)
    with django_assert_num_queries(4):  # session, user, membership, the page
        assert len(admin_client.get(ACCESS_LOG).json()["results"]) == 5


def test_a_refused_export_writes_no_export_record(api_client, stored, read_key):
    response = api_client.get("/api/v1/audit-events/export", {"manifest": "1", "format": "csv"},
                              HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert response.status_code == 400 and "manifest" in response.json()["errors"]
    assert not AccessRecord.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/audit-events", "/api/v1/traces", "/api/v1/audit-events/export",
                                  "/api/v1/audit-events/evt-1", "/api/v1/integrity"])
def test_head_runs_the_same_parameter_check_as_get(api_client, stored, read_key, path):
    head = api_client.head(path, {"decison": "deny"}, HTTP_AUTHORIZATION=f"Bearer {read_key}")
    get = api_client.get(path, {"decison": "deny"}, HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert head.status_code == get.status_code == 400
    assert not AccessRecord.objects.exists()


@pytest.mark.parametrize("path", ["/events/", "/traces/"])
def test_a_400_page_offers_none_of_the_organizations_values(user_client, org, path):
    """The panel's suggestions are the organization's data: only with a page whose read is recorded."""
    store_event(org, actor="carol@acme.example", metadata={"team": "payments"})
    bad = user_client.get(path, {"since": "soon"})
    assert bad.status_code == 400
    assert "carol@acme.example" not in bad.content.decode() and "payments" not in bad.content.decode()
    assert not AccessRecord.objects.exists()
    good = user_client.get(path)
    assert "carol@acme.example" in good.content.decode() and AccessRecord.objects.count() == 1
