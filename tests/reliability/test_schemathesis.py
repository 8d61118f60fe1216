"""Schemathesis against /api/v1/schema: every operation, generated requests through the
real Django WSGI app; no 5xx, and every answer has a documented status, content type,
headers and body shape. Bounded: a fixed number of examples per operation, derandomized
so CI runs are repeatable."""

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

from audit.accounts import services
from lens.wsgi import application
from tests.factories import store_event

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Django's own test client keeps the connection open across requests (the test's
    transaction lives on it); the WSGI app called directly would close it at each end."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_key(org):
    """A key with both scopes, so every operation is reachable, over a few stored events."""
    store_event(org, id="evt-1", trace_id="trace-1")
    store_event(org, id="evt-2", trace_id="trace-1", decision="deny", outcome="denied", status_code=403)
    return services.api_key_create(org=org, scopes=["ingest", "read"], name="schemathesis")[1]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):
    # The schema describes an NDJSON body as a string: send it as it is (bad UTF-8 included).
    return (value if isinstance(value, str) else json.dumps(value)).encode("utf-8", "surrogatepass")


@schemathesis.serializer("application/x-protobuf")
def _protobuf(ctx, value):
    # OTLP's binary body: whatever bytes were generated, sent as they are.
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


# Generating the schema needs no database, so it loads at collection like any module.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema", application)


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, api_key):
    case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"}, checks=CHECKS)
