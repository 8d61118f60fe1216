import json

from audit.models import AuditEvent
from tests.factories import wire_event


def test_ingest_roundtrip(org, ingest_key, api_client):
    response = api_client.post(
        "/api/v1/audit-events",
        data=json.dumps([wire_event(id="a-1"), wire_event(id="a-2")]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {ingest_key}",
    )
    assert response.status_code == 202, response.json()
    assert AuditEvent.objects.filter(org=org).count() == 2
