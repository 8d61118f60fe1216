"""SPEC §13, row by row: a span and its guardrails → the raw wire event."""

import json
import re
from pathlib import Path

import pytest

from audit.events import fields
from audit.ingest.door import validate_event
from audit.otlp import codec, mapping
from audit.otlp.codec import Span

START = 1_795_425_302_412_000_000  # 2026-11-23T09:15:02.412Z


def span(span_id="00f067aa0ba902b7", parent="", name="tools/call create_issue", error=False, message="", end=None,
         **attributes):
    return Span(
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id=span_id, parent_span_id=parent, name=name,
        attributes=attributes, start_ns=START, end_ns=START + 212_000_000 if end is None else end, error=error,
        status_message=message,
    )


def call(**attributes):
    return span(**{"mcp.method.name": "tools/call", "gen_ai.tool.name": "create_issue", "igris.slug": "github-prod",
                   **attributes})


def guardrail(span_id="1111111111111111", **attributes):
    return span(span_id=span_id, parent="00f067aa0ba902b7", name="apply_guardrail", **{
        "gen_ai.operation.name": "apply_guardrail", **attributes})


def event(call_span, *guardrails):
    mapped, errors = mapping.span_event(call=call_span, guardrails=guardrails)
    assert errors == {}
    return mapped


def test_the_table_fills_every_sender_field_but_server():
    assert [name for name, _ in mapping.FIELDS] == [name for name in fields.WIRE_NAMES if name != "server"]


def test_a_full_span_maps_field_by_field():
    mapped = event(call(**{
        "igris.trace_id": "trace-7f3a", "igris.user": "alice@company.com", "enduser.id": "ignored",
        "gen_ai.tool.call.arguments": '{"repo": "acme/igris", "title": "Plan"}',
        "gen_ai.security.decision.type": "warn", "gen_ai.security.policy.id": "r-2",
        "gen_ai.security.policy.name": "github-guardrails", "gen_ai.security.decision.reason": "watch this",
        "igris.metadata.env": "production", "igris.metadata.retries": 2, "http.response.status_code": 200,
    }))
    assert mapped == {
        "id": "otel-00f067aa0ba902b7", "timestamp": "2026-11-23T09:15:02.412000Z", "trace_id": "trace-7f3a",
        "actor": "alice@company.com", "slug": "github-prod", "method": "tools/call", "tool": "create_issue",
        "arguments": {"repo": "acme/igris", "title": "Plan"}, "decision": "alert",
        "rule": {"id": "r-2", "policy": "github-guardrails"}, "reason": "watch this",
        "metadata": {"env": "production", "retries": 2}, "duration_ms": 212.0, "outcome": "success",
        "status_code": 200, "error": None,
    }
    assert validate_event(mapped, max_bytes=1 << 20)[1] == {}


def test_fallbacks_when_the_igris_attributes_are_absent():
    mapped = event(span(**{"mcp.method.name": "tools/list", "enduser.id": "bob", "mcp.server.name": "GitHub MCP (Prod)"}))
    assert mapped["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert (mapped["actor"], mapped["slug"], mapped["tool"], mapped["arguments"]) == ("bob", "github-mcp-prod", None, None)
    assert (mapped["decision"], mapped["rule"], mapped["reason"], mapped["metadata"]) == ("allow", None, None, {})
    assert event(span(**{"mcp.method.name": "initialize"}, **{"server.address": "db"}))["slug"] == "db-"
    assert event(span(**{"mcp.method.name": "initialize", "igris.slug": "x-prod"}))["actor"] is None


def test_a_span_with_no_server_name_has_no_slug():
    mapped, errors = mapping.span_event(call=span(**{"mcp.method.name": "initialize", "server.address": "%%%"}))
    assert "slug" in errors and "mcp.server.name" in errors["slug"]


@pytest.mark.parametrize("decision_type, decision", [("deny", "deny"), ("warn", "alert"), ("allow", "allow"),
                                                     ("modify", "allow"), (7, "allow")])
def test_decision_types(decision_type, decision):
    assert event(call(**{"gen_ai.security.decision.type": decision_type}))["decision"] == decision


def test_a_guardrail_child_decides_and_names_its_policy():
    mapped = event(call(), guardrail(**{
        "gen_ai.security.decision.type": "deny", "gen_ai.security.policy.id": "r-7",
        "gen_ai.security.policy.name": "github-guardrails", "gen_ai.security.decision.reason": "no deletes",
    }))
    assert (mapped["decision"], mapped["outcome"]) == ("deny", "denied")
    assert (mapped["rule"], mapped["reason"]) == ({"id": "r-7", "policy": "github-guardrails"}, "no deletes")


def test_the_most_severe_decision_wins_and_the_call_wins_a_tie():
    allow_call = call(**{"gen_ai.security.decision.type": "allow", "gen_ai.security.policy.id": "r-call"})
    warn = guardrail("2222222222222222", **{"gen_ai.security.decision.type": "warn", "gen_ai.security.policy.id": "r-warn"})
    deny = guardrail("3333333333333333", **{"gen_ai.security.decision.type": "deny", "gen_ai.security.policy.id": "r-deny"})
    assert event(allow_call, warn, deny)["rule"] == {"id": "r-deny"}
    assert event(allow_call, deny, warn) == event(allow_call, warn, deny)  # the order they came in does not matter
    warn_call = call(**{"gen_ai.security.decision.type": "warn", "gen_ai.security.policy.id": "r-call"})
    assert event(warn_call, warn)["rule"] == {"id": "r-call"}
    assert event(call(), guardrail())["decision"] == "allow"  # a guardrail that decided nothing


def test_outcome_status_code_and_error():
    assert event(call(**{"igris.outcome": "rate_limited", "http.response.status_code": 429}))["outcome"] == "rate_limited"
    failed = event(call(error=True, message="upstream said 502", **{"error.type": "UpstreamError",
                                                                     "http.response.status_code": 502}))
    assert (failed["outcome"], failed["error"], failed["status_code"]) == ("error", "UpstreamError: upstream said 502", 502)
    assert event(call(message="not an error"))["error"] is None


def test_arguments_that_are_not_json_text_do_not_map():
    _, errors = mapping.span_event(call=call(**{"gen_ai.tool.call.arguments": "repo=acme"}))
    assert errors == {"arguments": "gen_ai.tool.call.arguments is not JSON text"}
    assert event(call(**{"gen_ai.tool.call.arguments": {"repo": "acme"}}))["arguments"] == {"repo": "acme"}


def test_times():
    assert event(call(end=0))["duration_ms"] is None
    _, errors = mapping.span_event(call=Span(**{**call().__dict__, "start_ns": 0}))
    assert "timestamp" in errors


def test_span_kinds():
    assert mapping.span_kind(call()) == mapping.CALL
    assert mapping.span_kind(guardrail()) == mapping.GUARDRAIL
    assert mapping.span_kind(span(name="apply_guardrail pii-filter")) == mapping.GUARDRAIL
    assert mapping.span_kind(span(name="GET /")) is None


def test_a_kept_record_maps_to_the_same_event_and_keeps_only_what_the_table_reads():
    original = call(**{"igris.metadata.env": "production", "http.url": "https://example.com/secret"})
    record = mapping.span_record(original)
    assert "http.url" not in record["attributes"] and "igris.metadata.env" in record["attributes"]
    kept = mapping.record_span(trace_id=original.trace_id, span_id=original.span_id, parent_span_id="",
                               record=json.loads(json.dumps(record)))
    assert event(kept) == event(original)


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", float("nan"), {"k": [float("inf")]}])
def test_a_record_that_cannot_be_stored_is_refused(value):
    with pytest.raises(mapping.Unmappable):
        mapping.span_record(call(**{"igris.metadata.x": value}))


def test_the_example_in_docs_otlp_md_maps_to_the_event_shown_there():
    text = (Path(__file__).resolve().parents[2] / "docs" / "otlp.md").read_text()
    request_json, event_json = re.findall(r"```json\n(.*?)```", text, re.S)[:2]
    request = codec.request_decode(body=request_json.encode(), media=codec.JSON, content_encoding=None, max_bytes=1 << 20)
    spans = list(codec.request_spans(request))
    calls = [s for s in spans if mapping.span_kind(s) == mapping.CALL]
    guardrails = [s for s in spans if mapping.span_kind(s) == mapping.GUARDRAIL]
    clean, errors = validate_event(event(calls[0], *guardrails), max_bytes=1 << 20)
    assert errors == {}
    assert clean == {**json.loads(event_json), "server": None}
