"""A client generated from the live schema does every operation, with no raw HTTP.

openapi-python-client (pinned in requirements-tools.txt, installed in .venv-tools by
scripts/tools) writes a Python client from `GET /api/v1/schema` of a running Lens, with the
settings users are told to use (scripts/openapi-python-client.yaml); each operation of the
schema is then driven through that client against the same Lens and its answer checked.

Every operation needs a driver: `test_every_operation_has_a_driver` fails naming any
operation of the schema that has none. Adding one is a function here:

    @driver("stats_top")
    def _(api):
        page = api.call("stats_top", by=api.enum("stats_top", "by", "actor"))
        assert page.results[0].count == ...

`api.call(operation_id, ...)` runs the generated `sync_detailed` and returns the parsed
body (failing on an unexpected status); `api.module(operation_id)` is the generated module
and `api.models` the generated models. What a generator cannot express is listed in
docs/api-clients.md.
"""

import importlib
import io
import json
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest

from audit.accounts import services
from audit.integrity.checkpoints import checkpoint_create
from tests.factories import wire_event
from tests.otlp.sdk import DENY, Gateway, event_id, json_body

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / ".venv-tools" / "bin" / "openapi-python-client"
CONFIG = ROOT / "scripts" / "openapi-python-client.yaml"
PACKAGE = "lens_generated_client"

DRIVERS = {}


def driver(operation_id):
    def register(function):
        DRIVERS[operation_id] = function
        return function

    return register


@pytest.fixture(scope="module")
def schema(live_server, django_db_blocker):
    # The live server's thread shares this one's database connection (SQLite in memory), and
    # checks it at every request: without the unblock, a test before this one leaves it open
    # and the schema request fails (as it did in the whole suite, never alone).
    with django_db_blocker.unblock():
        response = httpx.get(f"{live_server.url}/api/v1/schema", params={"format": "json"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def generated(schema, tmp_path_factory):
    """The client package, generated from the live schema and imported."""
    if not GENERATOR.exists():
        pytest.fail(f"{GENERATOR} is missing: run scripts/tools (scripts/setup requirements-dev.txt does)")
    work = tmp_path_factory.mktemp("client")
    (work / "schema.json").write_text(json.dumps(schema))
    validator = GENERATOR.parent / "openapi-spec-validator"
    checked = subprocess.run([str(validator), str(work / "schema.json")], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(work / "schema.json"), "--output-path", str(work / PACKAGE),
         "--meta", "none", "--config", str(CONFIG)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Only the formatter's absence may be reported: every body and parameter was understood.
    assert "Unsupported" not in result.stdout + result.stderr and "WARNING" not in result.stdout, result.stdout
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def schema_operations(schema) -> set[str]:
    return {operation["operationId"] for operations in schema["paths"].values() for operation in operations.values()}


class Api:
    """The generated client, logged in with a key of every scope, and what drivers share."""

    def __init__(self, generated, schema, base_url, key, org, receiver):
        self.package, self.schema, self.org, self.receiver = generated, schema, org, receiver
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.types = importlib.import_module(f"{PACKAGE}.types")
        self.client = generated.AuthenticatedClient(base_url=base_url, token=key, raise_on_unexpected_status=True)
        self.modules = {}
        for tag_dir in (Path(generated.__file__).parent / "api").iterdir():
            for file in tag_dir.glob("*.py"):
                if file.stem != "__init__":
                    self.modules[file.stem] = f"{PACKAGE}.api.{tag_dir.name}.{file.stem}"

    def module(self, operation_id):
        return importlib.import_module(self.modules[operation_id])

    def detailed(self, operation_id, *args, **kwargs):
        return self.module(operation_id).sync_detailed(*args, client=self.client, **kwargs)

    def call(self, operation_id, *args, expect=None, **kwargs):
        response = self.detailed(operation_id, *args, **kwargs)
        expected = expect or (HTTPStatus.OK, HTTPStatus.CREATED, HTTPStatus.ACCEPTED, HTTPStatus.NO_CONTENT)
        expected = expected if isinstance(expected, tuple) else (expected,)
        assert response.status_code in expected, (operation_id, response.status_code, response.content[:500])
        return response.parsed

    def event(self, **overrides):
        return self.models.EventRequest.from_dict(wire_event(**overrides))

    def ingest(self, *events):
        """Events in through the generated client, as NDJSON bytes (a batch)."""
        payload = b"".join(json.dumps(wire_event(**event)).encode() + b"\n" for event in events)
        body = self.types.File(payload=io.BytesIO(payload).getvalue(), mime_type="application/x-ndjson")
        return self.call("audit_events_ingest", body=body)


@pytest.fixture
def api(generated, schema, live_server, org, receiver):
    key = services.api_key_create(org=org, scopes=["ingest", "read", "admin"], name="generated client")[1]
    api = Api(generated, schema, live_server.url, key, org, receiver)
    yield api
    api.client.get_httpx_client().close()


# --- the drivers, one per operation ----------------------------------------------------------


@driver("audit_events_ingest")
def _(api):
    single = api.call("audit_events_ingest", body=api.event(id="gen-1"))
    assert (single.accepted, single.receipts[0].id) == (1, "gen-1")
    batch = api.ingest({"id": "gen-2"}, {"id": "gen-3"})
    assert batch.accepted == 2 and [r.status.value for r in batch.receipts] == ["accepted", "accepted"]
    duplicate = api.call("audit_events_ingest", body=api.event(id="gen-1"), expect=HTTPStatus.BAD_REQUEST)
    assert duplicate.conflict + duplicate.duplicate == 1


@driver("audit_events_list")
def _(api):
    api.ingest(
        {"id": "m-1", "metadata": {"env": "production", "feature": "triage"}},
        {"id": "m-2", "metadata": {"env": "production", "feature": "billing"}},
        {"id": "m-3", "metadata": {"env": "staging", "feature": "triage"}},
        *({"id": f"p-{n}", "metadata": {"env": "load"}} for n in range(5)),
    )
    both = api.call("audit_events_list", metadata=["env=production", "feature=triage"])
    assert [event.id for event in both.results] == ["m-1"]
    ored = api.call("audit_events_list", metadata=["feature=triage", "feature=billing"], page_size=10)
    assert {event.id for event in ored.results} == {"m-1", "m-2", "m-3"}
    # Walking the pages by the cursor in the body sees every event once.
    seen, cursor = [], api.types.UNSET
    while True:
        page = api.call("audit_events_list", metadata=["env=load"], page_size=2, cursor=cursor)
        seen += [event.id for event in page.results]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == [f"p-{n}" for n in range(5)]
    bad = api.call("audit_events_list", metadata=["no-equals-sign"], expect=HTTPStatus.BAD_REQUEST)
    assert "metadata" in bad.errors.additional_properties


@driver("audit_events_retrieve")
def _(api):
    api.ingest({"id": "one", "metadata": {"env": "production"}})
    event = api.call("audit_events_retrieve", "one")
    assert (event.id, event.metadata.additional_properties) == ("one", {"env": "production"})
    api.call("audit_events_retrieve", "missing", expect=HTTPStatus.NOT_FOUND)


@driver("audit_events_export")
def _(api):
    api.ingest(*({"id": f"x-{n}", "metadata": {"env": "production"}} for n in range(3)))
    # Bytes, as scripts/openapi-python-client.yaml reads NDJSON (the first media type).
    body = api.call("audit_events_export", metadata=["env=production"])
    assert sorted(json.loads(line)["id"] for line in body.splitlines()) == ["x-0", "x-1", "x-2"]
    csv = api.call("audit_events_export", format_=api.models.AuditEventsExportFormat.CSV)
    assert csv.splitlines()[0].startswith(b"id,timestamp,")
    # Streamed with the same client: its request, read a line at a time (docs/api-clients.md).
    request = api.module("audit_events_export")._get_kwargs(metadata=["env=production"])
    with api.client.get_httpx_client().stream(**request) as response:
        lines = [json.loads(line)["id"] for line in response.iter_lines() if line]
    assert sorted(lines) == ["x-0", "x-1", "x-2"]


@driver("traces_list")
def _(api):
    api.ingest({"id": "t-1", "trace_id": "trace-a"}, {"id": "t-2", "trace_id": "trace-a", "decision": "deny"},
               {"id": "t-3", "trace_id": "trace-b"})
    page = api.call("traces_list", decision=[api.models.TracesListDecisionItem.DENY])
    assert [(trace.trace_id, trace.calls, trace.decisions.deny) for trace in page.results] == [("trace-a", 2, 1)]


@driver("traces_retrieve")
def _(api):
    api.ingest(*({"id": f"c-{n}", "trace_id": "trace/with slash"} for n in range(3)))
    chain = api.call("traces_retrieve", "trace/with slash", page_size=2)
    assert [event.id for event in chain.events] == ["c-0", "c-1"] and chain.events_truncated
    rest = api.call("traces_retrieve", "trace/with slash", page_size=2, cursor=chain.next_cursor)
    assert [event.id for event in rest.events] == ["c-2"] and rest.next_cursor is None


@driver("conflicts_list")
def _(api):
    api.ingest({"id": "dup", "tool": "a"})
    api.call("audit_events_ingest", body=api.event(id="dup", tool="b"), expect=HTTPStatus.BAD_REQUEST)
    page = api.call("conflicts_list")
    assert [conflict.event_id for conflict in page.results] == ["dup"]


@driver("integrity_retrieve")
def _(api):
    api.ingest({"id": "i-1"})
    integrity = api.call("integrity_retrieve")
    assert integrity.head.seq == 1


@driver("integrity_keys_list")
def _(api):
    api.ingest({"id": "k-1"})
    checkpoint_create(org=api.org, reason="test")
    keys = api.call("integrity_keys_list")
    assert [key.algorithm.value for key in keys] == ["ed25519"]


@driver("integrity_checkpoints_list")
def _(api):
    api.ingest({"id": "cp-1"})
    checkpoint_create(org=api.org, reason="test")
    page = api.call("integrity_checkpoints_list")
    assert [checkpoint.seq for checkpoint in page.results] == [1] and page.next_cursor is None


@driver("access_log_list")
def _(api):
    api.call("audit_events_list", actor=["alice@company.com"])
    page = api.call("access_log_list")
    assert page.results[0].action.value == "event-list"
    assert page.results[0].filters.additional_properties == {"actor": ["alice@company.com"]}


@driver("policy_simulate")
def _(api):
    api.ingest({"id": "s-1", "tool": "delete_repo"}, {"id": "s-2", "tool": "list_issues"})
    request = api.models.SimulateRequest.from_dict({
        "query": "slug:github-prod",
        "policy": {"name": "draft", "default": "allow", "rules": [{"id": "r-del", "tool": "delete_*", "action": "deny"}]},
    })
    result = api.call("policy_simulate", body=request)
    assert (result.evaluated, result.changed) == (2, 1)
    assert {name: n for name, n in result.transitions.additional_properties.items() if n} == {"allow->deny": 1}


@driver("otlp_traces_export")
def _(api):
    """OTLP/JSON. A protobuf body can be sent (a `File`), but its answer is protobuf too, which a
    generated parser reads as JSON: the media type of the answer follows the request's, which
    OpenAPI cannot tie (docs/api-clients.md). OpenTelemetry's own exporters send protobuf."""
    gateway = Gateway()
    try:
        # With its guardrail span, so the call is decided (and stored) at once.
        call, guardrail = gateway.call("delete_repo", guardrail=DENY)
        body = api.models.OtlpTracesExportJsonBody.from_dict(json.loads(json_body([call, guardrail])))
        answer = api.call("otlp_traces_export", body=body)
    finally:
        gateway.shutdown()
    assert answer.partial_success is api.types.UNSET or not answer.partial_success.rejected_spans
    assert api.call("audit_events_retrieve", event_id(call)).decision.value == "deny"


def _saved_view(api):
    body = api.models.SavedViewRequest.from_dict({"name": "Denies", "query": "decision=deny&since=24h", "shared": True})
    return api.call("views_create", body=body)


@driver("views_create")
def _(api):
    view = _saved_view(api)
    assert (view.name, view.shared) == ("Denies", True) and view.owner.startswith("key:")


@driver("views_list")
def _(api):
    view = _saved_view(api)
    assert [listed.id for listed in api.call("views_list")] == [view.id]


@driver("views_retrieve")
def _(api):
    view = _saved_view(api)
    assert api.call("views_retrieve", view.id).query == "decision=deny&since=24h"


@driver("views_update")
def _(api):
    view = _saved_view(api)
    changed = api.call("views_update", view.id, body=api.models.PatchedSavedViewRequest.from_dict({"name": "Renamed"}))
    assert changed.name == "Renamed"


@driver("views_destroy")
def _(api):
    view = _saved_view(api)
    api.call("views_destroy", view.id)
    api.call("views_retrieve", view.id, expect=HTTPStatus.NOT_FOUND)


def _destination(api):
    body = api.models.DestinationRequest.from_dict({"name": "SOC", "kind": "webhook", "url": api.receiver.url})
    return api.call("destinations_create", body=body)


@driver("destinations_create")
def _(api):
    created = _destination(api)
    assert created.secret.startswith("whsec_")


@driver("destinations_list")
def _(api):
    created = _destination(api)
    assert [destination.id for destination in api.call("destinations_list").results] == [created.id]


@driver("destinations_retrieve")
def _(api):
    created = _destination(api)
    assert api.call("destinations_retrieve", created.id).name == "SOC"


@driver("destinations_update")
def _(api):
    created = _destination(api)
    paused = api.call("destinations_update", created.id, body=api.models.PatchedDestinationRequest.from_dict({"paused": True}))
    assert paused.paused is True


@driver("destinations_destroy")
def _(api):
    created = _destination(api)
    api.call("destinations_destroy", created.id)
    api.call("destinations_retrieve", created.id, expect=HTTPStatus.NOT_FOUND)


@driver("destinations_test")
def _(api):
    created = _destination(api)
    delivery = api.call("destinations_test", created.id)
    assert delivery.status.value == "delivered" and len(api.receiver.requests) == 1


@driver("deliveries_list")
def _(api):
    created = _destination(api)
    api.call("destinations_test", created.id)
    page = api.call("deliveries_list")
    assert [delivery.destination for delivery in page.results] == [created.id]


def _alert_rule(api):
    destination = _destination(api)
    body = api.models.AlertRuleRequest.from_dict({"name": "Denies", "query": "decision:deny", "destination": destination.id})
    return api.call("alert_rules_create", body=body)


@driver("alert_rules_create")
def _(api):
    rule = _alert_rule(api)
    assert (rule.name, rule.enabled) == ("Denies", True)


@driver("alert_rules_list")
def _(api):
    rule = _alert_rule(api)
    assert [listed.id for listed in api.call("alert_rules_list").results] == [rule.id]


@driver("alert_rules_retrieve")
def _(api):
    rule = _alert_rule(api)
    assert api.call("alert_rules_retrieve", rule.id).query == "decision:deny"


@driver("alert_rules_update")
def _(api):
    rule = _alert_rule(api)
    changed = api.call("alert_rules_update", rule.id, body=api.models.PatchedAlertRuleRequest.from_dict({"enabled": False}))
    assert changed.enabled is False


@driver("alert_rules_destroy")
def _(api):
    rule = _alert_rule(api)
    api.call("alert_rules_destroy", rule.id)
    api.call("alert_rules_retrieve", rule.id, expect=HTTPStatus.NOT_FOUND)


@driver("audit_events_histogram")
def _(api):
    api.ingest({"id": "h-1"}, {"id": "h-2", "decision": "deny"}, {"id": "h-3", "decision": "alert"})
    histogram = api.call("audit_events_histogram", interval=api.models.AuditEventsHistogramInterval("1h"))
    assert (histogram.interval.value, histogram.total) == ("1h", 3)
    counts = [(b.allow, b.deny, b.alert) for b in histogram.buckets]
    assert tuple(map(sum, zip(*counts))) == (1, 1, 1)
    bad = api.call("audit_events_histogram", since="not a time", expect=HTTPStatus.BAD_REQUEST)
    assert "since" in bad.errors.additional_properties


@driver("stats_top")
def _(api):
    api.ingest({"id": "s-1", "actor": "a@x"}, {"id": "s-2", "actor": "a@x", "decision": "deny"}, {"id": "s-3", "actor": "b@x"})
    top = api.call("stats_top", by="actor")
    assert (top.total, [(r.value, r.count, r.deny) for r in top.results]) == (3, [("a@x", 2, 1), ("b@x", 1, 0)])
    api.call("stats_top", by="nothing", expect=HTTPStatus.BAD_REQUEST)


@driver("audit_events_stream")
def _(api):
    """Server-Sent Events: the generator builds the request; the stream is read line by line
    with the same client, as docs/api-clients.md shows (no generator parses SSE)."""
    api.ingest({"id": "l-1", "decision": "deny"}, {"id": "l-2"})
    deny = api.models.AuditEventsStreamDecisionItem.DENY
    request = api.module("audit_events_stream")._get_kwargs(decision=[deny], last_event_id="0")
    with api.client.get_httpx_client().stream(**request) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        data = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
    assert [event["id"] for event in data] == ["l-1"]


def _hold(api, query="actor:bob@x.com"):
    return api.call("holds_create", body=api.models.HoldRequest(reason="case 42", query=query))


@driver("holds_create")
def _(api):
    hold = _hold(api)
    assert (hold.reason, hold.query, hold.created_by) == ("case 42", "actor:bob@x.com", hold.created_by)
    bad = api.call("holds_create", body=api.models.HoldRequest(reason="bad", query="actor:"),
                   expect=HTTPStatus.BAD_REQUEST)
    assert "query" in bad.errors.additional_properties


@driver("holds_list")
def _(api):
    held = {_hold(api).id, _hold(api, query="decision:deny").id}
    page = api.call("holds_list", page_size=1)
    seen = {hold.id for hold in page.results}
    while page.next_cursor:
        page = api.call("holds_list", page_size=1, cursor=page.next_cursor)
        seen |= {hold.id for hold in page.results}
    assert seen == held


@driver("holds_retrieve")
def _(api):
    hold = _hold(api)
    assert api.call("holds_retrieve", hold.id).query == "actor:bob@x.com"
    api.call("holds_retrieve", hold.id + 1000, expect=HTTPStatus.NOT_FOUND)


@driver("holds_destroy")
def _(api):
    hold = _hold(api)
    api.call("holds_destroy", hold.id)
    api.call("holds_retrieve", hold.id, expect=HTTPStatus.NOT_FOUND)


# --- the tests ---------------------------------------------------------------------------------


def test_every_operation_has_a_driver(schema):
    missing = schema_operations(schema) - set(DRIVERS)
    assert not missing, f"operations with no driver in {__file__}: {sorted(missing)}"
    assert not set(DRIVERS) - schema_operations(schema), "drivers of operations the schema no longer has"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation_id", sorted(DRIVERS))
def test_the_generated_client_drives(operation_id, api):
    DRIVERS[operation_id](api)
