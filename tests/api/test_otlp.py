"""POST /api/v1/otlp/v1/traces, driven by the real OpenTelemetry SDK: its OTLP/HTTP
protobuf exporter against a running Lens (live_server), and bodies its own encoder
writes (protobuf, and OTLP/JSON through protobuf's json_format) where the test reads
the answer itself."""

import gzip
import json

import pytest
from django.test import override_settings
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from audit.api.throttling import IngestThrottle
from audit.models import AuditEvent
from audit.otlp import codec
from tests.otlp.sdk import DENY, URL, Gateway, event_id, exporter, post_body, post_spans

SUCCESS, FAILURE = SpanExportResult.SUCCESS, SpanExportResult.FAILURE


@pytest.fixture
def gateway():
    gateway = Gateway()
    yield gateway
    gateway.shutdown()


@pytest.fixture
def export(live_server, ingest_key):
    """Send spans with the SDK's exporter, one export request per call."""
    sender = exporter(live_server.url, ingest_key)
    yield sender.export
    sender.shutdown()


def decisions(org):
    return dict(AuditEvent.objects.filter(org=org).values_list("event_id", "decision"))


# --- the SDK's exporter against a running Lens -----------------------------------------


def test_an_allowed_call_becomes_an_event_readable_like_any_other(export, gateway, org, read_key, api_client):
    call, guardrail = gateway.call("list_issues", guardrail={"gen_ai.security.decision.type": "allow",
                                                             "gen_ai.security.policy.id": "r-1"},
                                   **{"igris.trace_id": "trace-7f3a", "igris.metadata.env": "production"})
    assert export([guardrail, call]) == SUCCESS
    response = api_client.get(f"/api/v1/audit-events/{event_id(call)}", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert response.status_code == 200
    event = response.json()
    assert (event["decision"], event["outcome"], event["rule"]) == ("allow", "success", {"id": "r-1"})
    assert (event["trace_id"], event["slug"], event["metadata"]) == ("trace-7f3a", "github-prod", {"env": "production"})
    assert event["arguments"] == {"repo": "acme/igris"} and event["seq"] == 1


def test_deny_by_a_guardrail_child_in_the_same_request(export, gateway, org):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY)
    assert export([guardrail, call]) == SUCCESS
    assert decisions(org) == {event_id(call): "deny"}


def test_deny_by_a_guardrail_child_in_a_later_request(export, gateway, org):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY, guardrail_ends_last=True)
    assert export([call]) == SUCCESS
    assert decisions(org) == {}  # waiting for a guardrail
    assert export([guardrail]) == SUCCESS
    assert decisions(org) == {event_id(call): "deny"}


def test_deny_by_a_guardrail_child_in_an_earlier_request(export, gateway, org):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY)
    assert export([guardrail]) == SUCCESS
    assert export([call]) == SUCCESS
    assert decisions(org) == {event_id(call): "deny"}


def test_non_mcp_spans_are_dropped_and_the_calls_kept(export, gateway, org):
    call, _ = gateway.call(**DENY)
    assert export([gateway.other("GET /health"), call, gateway.other("SELECT")]) == SUCCESS
    assert decisions(org) == {event_id(call): "deny"}


def test_the_same_spans_sent_twice_are_stored_once(export, gateway, org):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY)
    other, _ = gateway.call(**DENY)
    assert export([guardrail, call, other]) == SUCCESS
    assert export([guardrail, call, other]) == SUCCESS
    assert decisions(org) == {event_id(call): "deny", event_id(other): "deny"}
    assert AuditEvent.objects.filter(org=org).count() == 2


def test_gzip_bodies_as_the_exporter_sends_them(live_server, ingest_key, gateway, org):
    sender = exporter(live_server.url, ingest_key, compression=Compression.Gzip)
    call, _ = gateway.call(**DENY)
    assert sender.export([call]) == SUCCESS
    sender.shutdown()
    assert decisions(org) == {event_id(call): "deny"}


def test_a_read_only_key_is_refused(live_server, read_key, gateway, org):
    sender = exporter(live_server.url, read_key)
    call, _ = gateway.call(**DENY)
    assert sender.export([call]) == FAILURE
    sender.shutdown()
    assert decisions(org) == {}


# --- the answers, read by the test -----------------------------------------------------


def test_partial_success_names_what_was_rejected(api_client, ingest_key, gateway, org):
    call, _ = gateway.call(**DENY)
    toolless, _ = gateway.call(**{"gen_ai.tool.name": None})
    response = post_spans(api_client, [gateway.other("GET /health"), call, toolless], key=ingest_key)
    assert (response.status_code, response["Content-Type"]) == (200, codec.PROTOBUF)
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 2
    assert partial.error_message.startswith("2 of 3 spans rejected: 1 span is neither an MCP call")
    assert f"span {toolless.context.span_id:016x} 'tools/call list_issues': tool: is required" in partial.error_message


def test_full_success_leaves_partial_success_unset(api_client, ingest_key, gateway):
    call, _ = gateway.call(**DENY)
    response = post_spans(api_client, [call], key=ingest_key)
    assert (response.status_code, response.content) == (200, b"")
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")


def test_otlp_json_in_json_out(api_client, ingest_key, gateway, org):
    call, guardrail = gateway.call("delete_repo", guardrail=DENY)
    response = post_spans(api_client, [guardrail, call, gateway.other()], key=ingest_key, media=codec.JSON)
    assert (response.status_code, response["Content-Type"]) == (200, codec.JSON)
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert decisions(org) == {event_id(call): "deny"}


def test_gzip_json(api_client, ingest_key, gateway, org):
    call, _ = gateway.call(**DENY)
    assert post_spans(api_client, [call], key=ingest_key, media=codec.JSON, gzipped=True).status_code == 200
    assert decisions(org) == {event_id(call): "deny"}


def status_of(response):
    if response["Content-Type"] == codec.JSON:
        return response.json()["message"]
    return status_pb2.Status.FromString(response.content).message


@pytest.mark.parametrize("body, media, encoding, code, message", [
    (b"\x07garbage\xff\x00", codec.PROTOBUF, None, 400, "not a protobuf ExportTraceServiceRequest"),
    (b"{]", codec.JSON, None, 400, "not valid JSON"),
    (b"plain text", codec.PROTOBUF, "gzip", 400, "not valid gzip"),
    (gzip.compress(b"\0" * (2 << 20)), codec.PROTOBUF, "gzip", 413, "inflates to more than the limit of 1048576"),
    (b"", codec.PROTOBUF, "br", 415, "unsupported Content-Encoding 'br'"),
    (b"{}", "text/plain", None, 415, "send application/x-protobuf or application/json"),
])
@override_settings(LENS_MAX_BODY_BYTES=1 << 20)
def test_unreadable_bodies_answer_an_otlp_status(api_client, ingest_key, body, media, encoding, code, message):
    response = post_body(api_client, body, key=ingest_key, media=media, encoding=encoding)
    assert response.status_code == code
    assert response["Content-Type"] == (codec.JSON if media == "text/plain" else media)
    assert message in status_of(response)


@override_settings(LENS_MAX_BODY_BYTES=1000)
def test_a_body_over_the_limit_is_413(api_client, ingest_key):
    response = post_body(api_client, b"\0" * 1001, key=ingest_key)
    assert response.status_code == 413 and "over the limit of 1000 bytes" in status_of(response)


@override_settings(LENS_MAX_BATCH_EVENTS=2)
def test_too_many_spans_is_400(api_client, ingest_key, gateway):
    spans = [gateway.call(**DENY)[0] for _ in range(3)]
    response = post_spans(api_client, spans, key=ingest_key)
    assert response.status_code == 400 and status_of(response) == "3 spans is over the limit of 2 a request"


@pytest.mark.parametrize("media", [codec.PROTOBUF, codec.JSON])
def test_keys_and_scopes_answer_an_otlp_status(api_client, read_key, media):
    refused = post_body(api_client, b"", key=read_key, media=media)
    assert (refused.status_code, refused["Content-Type"]) == (403, media)
    assert status_of(refused) == "This API key lacks the 'ingest' scope."
    anonymous = api_client.generic("POST", URL, data=b"", content_type=media)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Bearer"
    assert status_of(anonymous) == "Authentication credentials were not provided."


def test_over_the_rate_limit_is_429_with_retry_after(api_client, ingest_key, monkeypatch):
    monkeypatch.setattr(IngestThrottle, "THROTTLE_RATES", {"ingest": "1/min"})
    assert post_body(api_client, b"", key=ingest_key).status_code == 200
    response = post_body(api_client, b"", key=ingest_key, media=codec.JSON)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "throttled" in json.dumps(response.json()).lower()


def test_another_organization_sees_nothing(api_client, ingest_key, other_read_key, gateway):
    call, _ = gateway.call(**DENY)
    post_spans(api_client, [call], key=ingest_key)
    response = api_client.get(f"/api/v1/audit-events/{event_id(call)}", HTTP_AUTHORIZATION=f"Bearer {other_read_key}")
    assert response.status_code == 404
