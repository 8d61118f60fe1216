"""While the database is unreachable the API answers 503 with Retry-After, never 500."""

import json

import pytest
from django.db import InterfaceError, OperationalError

from audit.accounts import services
from audit.explore import selectors
from audit.models import AuditEvent
from tests.factories import wire_event


@pytest.mark.parametrize("error", [OperationalError("server closed the connection unexpectedly"),
                                   InterfaceError("connection already closed")])
def test_ingest_during_a_database_outage_is_503_with_retry_after(api_client, ingest_key, org, monkeypatch, error):
    def down(**kwargs):
        raise error

    monkeypatch.setattr(services, "api_key_authenticate", down)  # the first query a request makes
    response = api_client.post("/api/v1/audit-events", data=json.dumps(wire_event(id="e-1")),
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {ingest_key}")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "database is unavailable" in response.json()["detail"]
    monkeypatch.undo()
    assert AuditEvent.objects.filter(org=org).count() == 0


def test_read_during_a_database_outage_is_503_with_retry_after(api_client, read_key, monkeypatch):
    def down(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(selectors, "event_list", down)
    response = api_client.get("/api/v1/audit-events", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_other_errors_are_still_drf_answers(api_client, db):
    response = api_client.get("/api/v1/audit-events", HTTP_AUTHORIZATION="Bearer lens_nope_nope")
    assert response.status_code == 401
