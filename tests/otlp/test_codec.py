"""Reading OTLP/HTTP bodies (protobuf, OTLP/JSON, gzip, deflate) and writing its answers."""

import gzip
import json
import zlib

import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from audit.otlp import codec
from tests.otlp.sdk import Gateway, json_body, protobuf_body

LIMIT = 1 << 20


@pytest.fixture
def spans():
    gateway = Gateway()
    call, guardrail = gateway.call("create_issue", guardrail={"gen_ai.security.decision.type": "deny"},
                                   **{"igris.metadata.env": "production", "http.response.status_code": 403})
    yield call, guardrail
    gateway.shutdown()


def decode(body, media=codec.PROTOBUF, encoding=None, limit=LIMIT):
    request = codec.request_decode(body=body, media=media, content_encoding=encoding, max_bytes=limit)
    return list(codec.request_spans(request))


def test_protobuf_spans_read_as_the_sdk_wrote_them(spans):
    call, guardrail = spans
    read = {span.name: span for span in decode(protobuf_body(spans))}
    got = read["tools/call create_issue"]
    assert got.span_id == f"{call.context.span_id:016x}"
    assert got.trace_id == f"{call.context.trace_id:032x}"
    assert got.parent_span_id == ""
    assert got.start_ns == call.start_time and got.end_ns == call.end_time
    assert got.attributes["http.response.status_code"] == 403
    assert got.attributes["service.name"] == "mcp-gateway"  # the resource's, under the span's own
    assert read["apply_guardrail github-guardrails"].parent_span_id == got.span_id


def test_otlp_json_with_hex_ids_reads_the_same_as_protobuf(spans):
    assert decode(json_body(spans), codec.JSON) == decode(protobuf_body(spans))


def test_json_with_base64_ids_as_protobuf_maps_them_is_read_too(spans):
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    body = json_format.MessageToJson(encode_spans(spans)).encode()
    assert decode(body, codec.JSON) == decode(protobuf_body(spans))


def test_json_ignores_unknown_fields_as_otlp_requires(spans):
    data = json.loads(json_body(spans))
    data["futureField"] = {"x": 1}
    data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["newThing"] = 3
    assert len(decode(json.dumps(data).encode(), codec.JSON)) == 2


@pytest.mark.parametrize("compress, encoding", [
    (gzip.compress, "gzip"), (zlib.compress, "deflate"), (lambda body: gzip.compress(body[:10]) + gzip.compress(body[10:]), "gzip"),
])
def test_compressed_bodies_inflate(spans, compress, encoding):
    assert decode(compress(protobuf_body(spans)), encoding=encoding) == decode(protobuf_body(spans))


def test_a_zip_bomb_is_refused_at_the_limit_without_inflating_it():
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 100_000
    with pytest.raises(codec.BodyTooLarge, match="inflates to more than the limit"):
        decode(bomb, encoding="gzip")


@pytest.mark.parametrize("body, media, encoding, message", [
    (b"not a protobuf at all", codec.PROTOBUF, None, "not a protobuf ExportTraceServiceRequest"),
    (b"{nope", codec.JSON, None, "not valid JSON"),
    (b"[1, 2]", codec.JSON, None, "must be a JSON object"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not*base64!"}]}]}]}', codec.JSON, None, "OTLP/JSON"),
    (b'{"resourceSpans": 7}', codec.JSON, None, "OTLP/JSON"),
    (b"\x1f\x8b\x08garbage", codec.PROTOBUF, "gzip", "not valid gzip"),
    (gzip.compress(b"x" * 1000)[:-12], codec.PROTOBUF, "gzip", "truncated"),
])
def test_unreadable_bodies_say_what_is_wrong(body, media, encoding, message):
    with pytest.raises(codec.OtlpBodyError, match=message) as raised:
        decode(body, media, encoding)
    assert raised.value.status == 400


def test_an_unknown_content_encoding_is_415():
    with pytest.raises(codec.UnsupportedEncoding) as raised:
        decode(b"", encoding="br")
    assert raised.value.status == 415


def test_an_empty_body_is_an_empty_request():
    assert decode(b"") == []


def test_media_types():
    assert codec.media_type("application/x-protobuf") == codec.PROTOBUF
    assert codec.media_type("Application/JSON; charset=utf-8") == codec.JSON
    assert codec.media_type("text/plain") is None and codec.media_type(None) is None


def test_responses_in_both_encodings():
    assert codec.response_encode(media=codec.PROTOBUF, rejected=0, message="") == b""
    assert json.loads(codec.response_encode(media=codec.JSON, rejected=0, message="")) == {}
    partial = ExportTraceServiceResponse.FromString(codec.response_encode(media=codec.PROTOBUF, rejected=2, message="why"))
    assert (partial.partial_success.rejected_spans, partial.partial_success.error_message) == (2, "why")
    assert json.loads(codec.response_encode(media=codec.JSON, rejected=2, message="why")) == {
        "partialSuccess": {"rejectedSpans": "2", "errorMessage": "why"}
    }
    status = status_pb2.Status.FromString(codec.status_encode(media=codec.PROTOBUF, http_status=400, message="bad"))
    assert (status.code, status.message) == (3, "bad")
    assert json.loads(codec.status_encode(media=codec.JSON, http_status=403, message="no")) == {"code": 7, "message": "no"}
