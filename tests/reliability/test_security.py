"""Security properties, swept over every URL the project serves.

- another organization's data is a 404 (never a 403, which would confirm it exists)
  and never appears in any answer;
- an ingest-only key cannot read, a read key cannot ingest;
- API keys are stored only as hashes and compared in constant time;
- every form that changes state carries a CSRF token, and a POST without one fails;
- production settings send CSP, HSTS and secure cookies, and `check --deploy` is clean.
"""

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse

from audit.accounts import services
from audit.models import ApiKey, SavedView
from tests.factories import store_event

ROOT = Path(__file__).resolve().parents[2]
THEIR_EVENT, THEIR_TRACE, THEIR_ACTOR = "globex-secret-evt", "globex/secret trace", "secret-actor@globex.example"
THEIR_PK = 987_654  # their alert destination's, alert rule's and legal hold's id
# Values for each URL parameter: the other organization's ids (its saved view's is set by `data`).
THEIR_IDS = {"event_id": THEIR_EVENT, "trace_id": THEIR_TRACE, "pk": THEIR_PK, "action": "delete", "view_id": None}


def _routes(patterns=None, prefix=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.name, sorted(pattern.pattern.converters)


ROUTES = list(_routes())
# For admins (signed in, or a key with the admin scope): a read key gets 403 there.
ADMINS_ONLY = {"api-access-log", "api-destinations", "api-destination", "api-destination-test", "api-alert-rules",
               "api-alert-rule", "api-deliveries", "api-holds", "api-hold"}
# Routes that only take POST: swept with a POST (their GET is a 405 for anyone).
POST_ONLY = {"api-destination-test", "alerts-destinations", "alerts-destination", "alerts-rules", "alerts-rule",
             "integrity-retention"}


def _url(name, params):
    return reverse(name, kwargs={param: THEIR_IDS[param] for param in params})


@pytest.fixture
def data(org, other_org):
    from audit.alerts.models import AlertRule, Destination
    from audit.retention.models import LegalHold

    store_event(org, id="ours-1", trace_id="ours-trace", actor="alice@acme.example")
    store_event(other_org, id=THEIR_EVENT, trace_id=THEIR_TRACE, actor=THEIR_ACTOR,
                metadata={"env": "production"}, reason="globex only")
    theirs = Destination.objects.create(pk=THEIR_PK, org=other_org, name="globex only", kind="webhook",
                                        url="https://hooks.globex.example/x")
    AlertRule.objects.create(pk=THEIR_PK, org=other_org, name="globex only", query="x", destination=theirs)
    LegalHold.objects.create(pk=THEIR_PK, org=other_org, reason="globex only", query="x")
    stranger = services.user_create(org=other_org, username="globex-user", password="globex-pass-123")
    view = SavedView.objects.create(org=other_org, owner_user=stranger, name="globex only", shared=True,
                                    query=f"actor={quote(THEIR_ACTOR)}")
    THEIR_IDS["view_id"] = view.pk


@pytest.fixture
def admin(org):
    return services.user_create(org=org, username="acme-admin", password="admin-pass-123", role="admin")


def _body(response):
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def test_every_route_is_in_the_sweep():
    assert {param for _, _, params in ROUTES for param in params} <= set(THEIR_IDS)
    assert all(name for _, name, _ in ROUTES), "every route needs a name to be swept"
    assert len(ROUTES) >= 16


@pytest.mark.parametrize("route, name, params", ROUTES, ids=[r[0] or "/" for r in ROUTES])
@pytest.mark.parametrize("who", ["read key", "admin session"])
def test_another_organizations_data_is_404_and_never_shown(client, api_client, data, read_key, admin, route,
                                                           name, params, who):
    url = _url(name, params)
    if who == "read key":
        call = api_client.post if name in POST_ONLY else api_client.get
        response = call(url, HTTP_AUTHORIZATION=f"Bearer {read_key}")
        if not url.startswith("/api/"):
            return  # pages are for people; a key is not a login there
        if name in ADMINS_ONLY:
            assert response.status_code == 403  # a matter of who, not of which organization
            return
    else:
        client.force_login(admin)
        response = (client.post if name in POST_ONLY else client.get)(url)
    assert response.status_code != 403, f"{url}: 403 tells the caller that the thing exists"
    assert response.status_code < 500
    if params:
        assert response.status_code == 404, f"{url} showed another organization's {params}"
    if name != "api-schema":  # the schema documents parameter names, no data
        body = _body(response)
        for secret in (THEIR_EVENT, THEIR_ACTOR, "globex only"):
            if secret == THEIR_EVENT and secret in url:
                continue  # a 404 page may repeat the path it was asked for
            assert secret not in body, f"{url} leaked {secret!r}"
    from audit.alerts.models import AlertRule, Destination

    assert Destination.objects.filter(pk=THEIR_PK).exists() and AlertRule.objects.filter(pk=THEIR_PK).exists()


@pytest.mark.parametrize("who", ["read key", "viewer session"])
def test_lists_and_exports_of_our_organization_hold_only_our_events(client, api_client, data, read_key, viewer, who):
    urls = ["/api/v1/audit-events", "/api/v1/audit-events?format=csv", "/api/v1/audit-events/export",
            "/api/v1/audit-events/export?format=csv", "/api/v1/traces", f"/api/v1/audit-events?q={THEIR_TRACE}",
            "/api/v1/audit-events?metadata.env=production", "/api/v1/integrity", "/api/v1/integrity/keys",
            "/api/v1/integrity/checkpoints", "/api/v1/audit-events/export?manifest=1"]
    if who == "viewer session":
        client.force_login(viewer)
        urls += ["/events/", "/traces/", "/events/?q=globex", "/traces/?metadata.env=production", "/integrity/",
                 "/facets/metadata/?facet=env"]
    for url in urls:
        response = api_client.get(url, HTTP_AUTHORIZATION=f"Bearer {read_key}") if who == "read key" else client.get(url)
        assert response.status_code == 200, url
        body = _body(response)
        assert THEIR_ACTOR not in body and THEIR_EVENT not in body, url


def test_the_same_event_id_in_two_organizations_stays_apart(api_client, data, org, other_org):
    _, key = services.api_key_create(org=org, scopes=["ingest", "read"])
    event = {"id": THEIR_EVENT, "timestamp": "2026-11-23T09:00:00Z", "trace_id": "mine", "slug": "github-prod",
             "method": "initialize", "decision": "allow", "outcome": "success"}
    response = api_client.post("/api/v1/audit-events", data=json.dumps(event), content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.json()["receipts"][0]["status"] == "accepted"  # not "conflict": ids are per organization
    mine = api_client.get(f"/api/v1/audit-events/{THEIR_EVENT}", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert mine["trace_id"] == "mine"
    assert other_org.events.get(event_id=THEIR_EVENT).actor == THEIR_ACTOR


READ_URLS = ["/api/v1/audit-events", "/api/v1/audit-events/ours-1", "/api/v1/audit-events/export",
             "/api/v1/traces", "/api/v1/traces/ours-trace", "/api/v1/integrity", "/api/v1/integrity/keys",
             "/api/v1/integrity/checkpoints"]


@pytest.mark.parametrize("url", READ_URLS)
def test_an_ingest_only_key_cannot_read(api_client, data, ingest_key, url):
    response = api_client.get(url, HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
    assert response.status_code == 403
    assert "read" in response.json()["detail"]


def test_a_read_key_cannot_ingest(api_client, org, read_key):
    event = {"timestamp": "2026-11-23T09:00:00Z", "trace_id": "t", "slug": "github-prod", "method": "initialize",
             "decision": "allow", "outcome": "success"}
    response = api_client.post("/api/v1/audit-events", data=json.dumps(event), content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert response.status_code == 403
    assert "ingest" in response.json()["detail"]
    assert not org.events.exists()


def test_a_signed_in_user_cannot_ingest(client, org, viewer):
    client.force_login(viewer)
    response = client.post("/api/v1/audit-events", data="{}", content_type="application/json")
    assert response.status_code == 403


# --- API keys -------------------------------------------------------------------------


def test_api_keys_are_stored_only_as_hashes(org):
    key, plain = services.api_key_create(org=org, scopes=["read"], name="siem")
    secret = plain.split("_", 2)[2]
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    assert all(secret not in str(value) for value in row.values())
    assert row["key_hash"] == hashlib.sha256(plain.encode()).hexdigest()
    assert row["prefix"] == plain.split("_")[1]


def test_keys_are_compared_in_constant_time(org, monkeypatch):
    _, plain = services.api_key_create(org=org, scopes=["read"])
    calls = []

    def spy(a, b):
        calls.append((a, b))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(services.secrets, "compare_digest", spy)
    assert services.api_key_authenticate(plain=plain) is not None
    assert services.api_key_authenticate(plain=plain[:-1] + ("A" if plain[-1] != "A" else "B")) is None
    assert len(calls) == 2  # both the match and the near miss went through compare_digest
    assert all(len(a) == len(b) == 64 for a, b in calls)


def test_revoked_and_malformed_keys_are_refused(api_client, org):
    key, plain = services.api_key_create(org=org, scopes=["read"])
    services.api_key_revoke(key=key)
    for header in (f"Bearer {plain}", "Bearer lens_", "Bearer lens__", "Bearer not-a-key", "Bearer " + "a" * 5000):
        assert api_client.get("/api/v1/traces", HTTP_AUTHORIZATION=header).status_code == 401


# --- CSRF -----------------------------------------------------------------------------

FORM_RE = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)
PAGES = ["/login/", "/events/", "/traces/", "/events/ours-1/", "/traces/ours-trace/", "/api/v1/docs"]


def test_every_post_form_on_every_page_carries_a_csrf_token(data, viewer):
    client = Client(enforce_csrf_checks=True)
    forms = {}
    for url in PAGES:
        if url != "/login/":
            client.force_login(viewer)
        response = client.get(url)
        assert response.status_code == 200, url
        for form in FORM_RE.findall(_body(response)):
            method = re.search(r'method="(\w+)"', form, re.I)
            if method and method.group(1).lower() == "post":
                forms.setdefault(url, []).append(form)
                assert 'name="csrfmiddlewaretoken"' in form, f"a POST form on {url} has no CSRF token"
    assert "/login/" in forms and "/events/" in forms  # the login form and the logout button


def test_login_without_a_csrf_token_is_refused(org, viewer):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "viewer", "password": "viewer-pass-123"})
    assert response.status_code == 403
    page = client.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', _body(page)).group(1)
    response = client.post("/login/", {"username": "viewer", "password": "viewer-pass-123",
                                       "csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_logout_without_a_csrf_token_is_refused(org, viewer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    assert client.post("/logout/").status_code == 403
    assert client.get("/events/").status_code == 200  # still signed in


def test_session_writes_to_the_api_need_a_csrf_token(org, viewer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    response = client.post("/api/v1/audit-events", data="{}", content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


# --- production settings --------------------------------------------------------------

PRODUCTION_ENV = {
    "DEBUG": "off",
    "SECRET_KEY": "a-production-secret-" + "k" * 40,
    "ALLOWED_HOSTS": "lens.example.com",
}


def _run(code_or_args, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "LENS_TEST_DB_NAME")}
    env.update(PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="lens.settings", **extra)
    args = code_or_args if isinstance(code_or_args, list) else [sys.executable, "-c", code_or_args]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings():
    done = _run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_production_refuses_the_development_secret_key():
    done = _run([sys.executable, "manage.py", "check"], SECRET_KEY="lens-development-key-not-for-production")
    assert done.returncode != 0
    assert "SECRET_KEY must be set" in done.stderr


PROBE = """
import json, django
django.setup()
from django.test import Client
response = Client(HTTP_HOST="lens.example.com").get("/login/", secure=True)
plain = Client(HTTP_HOST="lens.example.com").get("/login/")
print(json.dumps({"status": response.status_code, "headers": dict(response.headers),
                  "cookie": str(response.cookies.get("csrftoken", "")), "plain": plain.status_code,
                  "plain_location": plain.headers.get("Location", "")}))
"""


def test_production_pages_send_csp_hsts_and_secure_cookies():
    done = _run(PROBE)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    headers = seen["headers"]
    assert seen["status"] == 200
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "Secure" in seen["cookie"] and "SameSite=Lax" in seen["cookie"]
    # Plain HTTP is redirected to HTTPS.
    assert seen["plain"] == 301 and seen["plain_location"].startswith("https://lens.example.com/")


def test_production_session_cookie_is_secure_and_http_only():
    done = _run("import django, json; django.setup(); from django.conf import settings as s; "
                "print(json.dumps([s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_SECURE, "
                "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.DEBUG]))")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, True, True, True, False]


def test_development_pages_send_csp_too(client):
    response = client.get("/login/")
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_a_trace_id_in_the_url_cannot_escape_the_route(api_client, data, read_key):
    for trace in ("../audit-events", "..%2F..%2Fschema", quote("../../etc/passwd", safe="")):
        response = api_client.get(f"/api/v1/traces/{trace}", HTTP_AUTHORIZATION=f"Bearer {read_key}")
        assert response.status_code == 404


def test_an_api_path_no_route_matches_is_a_json_404_and_pages_keep_their_page(api_client, client, read_key):
    response = api_client.get("/api/v1/audit-events/" + "x" * 65, HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
