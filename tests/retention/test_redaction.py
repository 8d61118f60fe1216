"""Redaction at the door (SPEC §11): the value at each path is replaced by an HMAC token
before validation and hashing; equal values match within an organization; nothing of the
original is stored; the chain and the event page say so."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from audit.accounts import services
from audit.events.models import AuditEvent
from audit.integrity.verification import chain_verify
from audit.ingest.redaction import TOKEN_RE
from tests.factories import wire_event

URL = "/api/v1/audit-events"


def _send(api_client, org, *events):
    key = services.api_key_create(org=org, scopes=["ingest"], name="gw")[1]
    return api_client.generic(
        "POST", URL, data=json.dumps(list(events)), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )


def _redact(org, *paths):
    out = StringIO()
    call_command("set_redaction", "--org", org.slug, *(arg for path in paths for arg in ("--path", path)), stdout=out)
    return out.getvalue()


def test_values_are_replaced_by_tokens_before_hashing(api_client, org, other_org):
    assert _redact(org, "arguments.auth.token", "metadata.user_email") == (
        "acme: redacts arguments.auth.token, metadata.user_email from now on\n"
    )
    _redact(other_org, "arguments.auth.token")
    sent = {"auth": {"token": "sk-live-123", "scheme": "bearer"}, "repo": "acme/igris"}
    second = wire_event(id="r2", arguments={"auth": {"token": "sk-live-123"}})
    response = _send(api_client, org,
                     wire_event(id="r1", arguments=sent, metadata={"user_email": "bob@x.com", "env": "prod"}),
                     second, wire_event(id="r3", arguments={"auth": {"token": "other"}}))
    assert response.status_code == 202
    _send(api_client, other_org, wire_event(id="r1", arguments={"auth": {"token": "sk-live-123"}}))

    r1, r2, r3 = (AuditEvent.objects.get(org=org, event_id=i) for i in ("r1", "r2", "r3"))
    theirs = AuditEvent.objects.get(org=other_org, event_id="r1")
    token = r1.arguments["auth"]["token"]
    assert TOKEN_RE.match(token) and TOKEN_RE.match(r1.metadata["user_email"])
    assert r1.arguments["auth"]["scheme"] == "bearer" and r1.arguments["repo"] == "acme/igris"
    assert r1.metadata["env"] == "prod"
    assert r2.arguments["auth"]["token"] == token  # equal values, equal tokens
    assert r3.arguments["auth"]["token"] != token
    assert theirs.arguments["auth"]["token"] != token  # another organization's key
    for row in AuditEvent.objects.all():
        stored = json.dumps([row.arguments, row.metadata, row.search_text])
        assert "sk-live-123" not in stored and "bob@x.com" not in stored
    assert chain_verify(org=org).ok
    # A resend of the same event is a duplicate: its redaction is the same.
    assert _send(api_client, org, second).json()["duplicate"] == 1


@override_settings(LENS_MAX_EVENT_BYTES=2000)
def test_redaction_comes_before_the_size_check(api_client, org):
    _redact(org, "arguments.blob")
    response = _send(api_client, org, wire_event(id="big", arguments={"blob": "x" * 5000}))
    assert response.status_code == 202
    assert TOKEN_RE.match(AuditEvent.objects.get(event_id="big").arguments["blob"])


def test_redaction_paths_are_checked(org):
    for bad in ("arguments", "metadata.a.b", "rule.id", "arguments..x", "actor"):
        with pytest.raises(CommandError, match="not a redaction path"):
            _redact(org, bad)
    with pytest.raises(CommandError, match="--path"):
        call_command("set_redaction", "--org", org.slug, stdout=StringIO())
    call_command("set_redaction", "--org", org.slug, "--clear", stdout=StringIO())


def test_no_key_no_unredacted_events(api_client, org, settings):
    _redact(org, "arguments.repo")
    settings.LENS_SIGNING_KEY_SECRET = "another secret entirely"
    response = _send(api_client, org, wire_event(id="x1"))
    assert response.status_code == 503
    assert not AuditEvent.objects.filter(event_id="x1").exists()


def test_the_event_page_marks_redacted_and_removed_values(admin_user_client, api_client, org):
    _redact(org, "arguments.token")
    _send(api_client, org, wire_event(id="page-1", arguments={"token": "abc", "repo": "r"}))
    page = admin_user_client.get("/events/page-1/").content.decode()
    assert "Redacted at ingest" in page and "arguments.token" in page
    AuditEvent.objects.filter(event_id="page-1").update(arguments=None, arguments_removed=True)
    page = admin_user_client.get("/events/page-1/").content.decode()
    assert "removed by retention" in page
