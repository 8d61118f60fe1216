"""Streamed exports: formats, the export endpoint, and constant memory over 100k rows."""

import csv
import io
import json
import gc
import os
import sys

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.test import AsyncClient

from audit.explore import exports, selectors
from audit.models import AuditEvent
from tests.api.conftest import get, warm  # noqa: F401 (fixtures: GET with the read key)
from tests.factories import store_events, wire_event

URL = "/api/v1/audit-events/export"


@pytest.fixture
def stored(org, other_org):
    store_events(
        org,
        wire_event(id="e1", timestamp="2026-11-23T09:00:01Z", arguments={"q": "a,\"b\"\nc"}, actor="-bob",
                   metadata={"env": "production", "ticket": 4711}, error="@SUM(A1)"),
        wire_event(id="e2", timestamp="2026-11-23T09:00:02Z", decision="deny", outcome="denied", rule=None,
                   actor=None, server={"name": "github-mcp", "version": "1.2.0"}, metadata={"env": "staging"}),
        wire_event(id="e3", timestamp="2026-11-23T09:00:03Z", tool="emoji_☃", reason="naïve ✓"),
    )
    store_events(other_org, wire_event(id="e9"))


def _stream_lines(fmt, events):
    """The export stream (COPY's blocks on PostgreSQL) cut back into its lines."""
    return b"".join(exports.export_stream(fmt, events)).split(b"\n")[:-1]


@pytest.mark.parametrize("lines_of", [
    exports.export_ndjson_lines, lambda events: [line + b"\n" for line in _stream_lines("ndjson", events)]
])
def test_ndjson_lines_are_the_wire_form(stored, org, lines_of):
    lines = list(lines_of(selectors.event_list(org=org)))
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    rows = [json.loads(line) for line in lines]
    assert [row["id"] for row in rows] == ["e3", "e2", "e1"]
    from audit.events.wire import event_wire

    assert rows == [event_wire(event) for event in selectors.event_list(org=org)]
    assert "naïve ✓".encode() in lines[0]  # UTF-8, not \u escapes


@pytest.mark.parametrize("blocks_of", [exports.export_csv_lines, lambda events: exports.export_stream("csv", events)])
def test_csv_flattens_nested_fields_as_json_text(stored, org, blocks_of):
    text = b"".join(blocks_of(selectors.event_list(org=org))).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == exports.CSV_COLUMNS
    by_id = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert list(by_id) == ["e3", "e2", "e1"]
    e1, e2 = by_id["e1"], by_id["e2"]
    assert json.loads(e1["arguments"]) == {"q": 'a,"b"\nc'}  # quoting survives commas, quotes, newlines
    assert json.loads(e1["metadata"]) == {"env": "production", "ticket": 4711}
    assert json.loads(e1["rule"])["policy"] == "github-guardrails"
    assert json.loads(e2["server"]) == {"name": "github-mcp", "version": "1.2.0"}
    assert e2["rule"] == "" and e2["actor"] == "" and e2["error"] == ""  # null is an empty cell
    assert e1["actor"] == "'-bob" and e1["error"] == "'@SUM(A1)"  # spreadsheet formulas are defused
    assert e1["duration_ms"] == "212.0" and e1["status_code"] == "200"
    assert text.endswith("\r\n")


ESCAPED = "back\\slash \\n\ttab\r\nnew line \b\f\v \\\\ end"  # what COPY's text format escapes


def test_the_stream_keeps_backslashes_and_control_characters(org):
    store_events(org, wire_event(id="esc", reason=ESCAPED, error="x\\", arguments={ESCAPED: [ESCAPED, "\\"]}))
    events = selectors.event_list(org=org)
    from audit.events.wire import event_wire

    [row] = [json.loads(line) for line in _stream_lines("ndjson", events)]
    assert row == event_wire(events.get())
    text = b"".join(exports.export_stream("csv", events)).decode()
    [cells] = list(csv.DictReader(io.StringIO(text, newline="")))
    assert cells["reason"] == ESCAPED and cells["error"] == "x\\"
    assert json.loads(cells["arguments"]) == {ESCAPED: [ESCAPED, "\\"]}


def test_exports_take_any_iterable_of_events(stored, org):
    events = list(selectors.event_list(org=org))[:1]
    assert len(list(exports.export_ndjson_lines(events))) == 1
    assert len(list(exports.export_csv_lines([]))) == 1  # the header alone


def test_buffered_joins_lines_into_chunks():
    lines = [b"x" * 10] * 25
    chunks = list(exports.buffered(lines, size=100))
    assert [len(chunk) for chunk in chunks] == [100, 100, 50]
    assert b"".join(chunks) == b"".join(lines)
    assert list(exports.buffered([])) == []


# --- the endpoint ---------------------------------------------------------------------------


def body(response):
    assert response.streaming
    return b"".join(response.streaming_content)


def test_export_ndjson_is_the_default(stored, get):
    response = get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-events-')
    assert response["Content-Disposition"].endswith('.ndjson"')
    assert [json.loads(line)["id"] for line in body(response).splitlines()] == ["e3", "e2", "e1"]


def test_export_csv_with_filters(stored, get):
    response = get(URL, {"format": "csv", "metadata.env": ["production", "staging"], "decision": "deny"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert [row["id"] for row in rows] == ["e2"]


@pytest.mark.postgres
@pytest.mark.parametrize("params,streams_along_the_index", [
    ({}, True), ({"since": "2026-11-01T00:00:00Z"}, True), ({"actor": "alice@company.com"}, False),
    ({"decision": "deny"}, False),
])
def test_whole_or_windowed_exports_read_along_the_time_index(stored, get, params, streams_along_the_index):
    """Without a sort the first bytes go out at once; a filter the time index does not answer
    leaves the plan to PostgreSQL (a scan of the index past every non-match could be worse)."""
    with CaptureQueriesContext(connection) as queries:
        response = get(URL, params)
        lines = body(response).splitlines()
    assert response.status_code == 200 and lines
    said = [query["sql"] for query in queries.captured_queries if "enable_sort" in query["sql"]]
    assert said == (["SET LOCAL enable_sort = off", "RESET enable_sort"] if streams_along_the_index else [])
    with connection.cursor() as cursor:  # and only for the export's own transaction
        cursor.execute("SHOW enable_sort")
        assert cursor.fetchone()[0] == "on"


def test_export_has_no_pages(org, get):
    store_events(org, *[wire_event() for _ in range(120)])
    assert len(body(get(URL)).splitlines()) == 120


@pytest.mark.parametrize(
    "params, parameter",
    [({"format": "json"}, "format"), ({"since": "whenever"}, "since"), ({"cursor": "x"}, "cursor")],
)
def test_export_bad_parameters_are_400(stored, get, params, parameter):
    response = get(URL, params)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [parameter]


def test_export_is_scoped_to_the_organization(stored, get, other_read_key):
    assert [json.loads(line)["id"] for line in body(get(URL, key=other_read_key)).splitlines()] == ["e9"]
    assert body(get(URL, {"trace_id": "t-none"}, key=other_read_key)) == b""


def test_export_session(stored, api_client, viewer):
    api_client.force_login(viewer)
    response = api_client.get(URL, {"format": "csv"})
    assert response.status_code == 200 and len(body(response).splitlines()) == 4


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_export_query_count_is_constant(org, warm, django_assert_num_queries, fmt):
    store_events(org, *[wire_event() for _ in range(exports.CHUNK_SIZE + 10)])
    with django_assert_num_queries(3):  # the key, the access record, one chunked query
        response = warm(URL, {"format": fmt, "metadata.env": "production"})
        lines = body(response).splitlines()
    assert len(lines) == exports.CHUNK_SIZE + 10 + (fmt == "csv")


def test_exports_past_the_process_limit_are_a_503_until_a_slot_is_given_back(stored, get, settings):
    # Another export holds the one slot. (Not a second request of this test client: in one
    # thread both would share one PostgreSQL connection, which a COPY under way holds.)
    settings.LENS_EXPORTS_PER_PROCESS = 1
    other = exports.SlotHeld(iter([b"a", b"b"]))
    next(other)
    refused = get(URL, {"format": "csv"})
    assert refused.status_code == 503 and int(refused["Retry-After"]) > 0
    assert "as many exports as it may at once" in refused.json()["detail"]
    other.close()
    response = get(URL)
    assert [json.loads(line)["id"] for line in body(response).splitlines()] == ["e3", "e2", "e1"]
    assert exports.export_slots_taken() == 0  # the end gave it back


def test_a_slot_is_held_from_the_first_block_until_the_end_an_error_a_close_or_collection(settings):
    settings.LENS_EXPORTS_PER_PROCESS = 1
    unread = [exports.SlotHeld(iter([b"x"])) for _ in range(3)]  # a client gone before the first byte
    assert len(unread) == 3 and exports.export_slots_taken() == 0

    finished = exports.SlotHeld(iter([b"x"]))
    assert list(finished) == [b"x"] and exports.export_slots_taken() == 0

    def failing():
        yield b"x"
        raise RuntimeError("the database went away")

    failed = exports.SlotHeld(failing())
    next(failed)
    with pytest.raises(RuntimeError):
        next(failed)
    assert exports.export_slots_taken() == 0

    closed = exports.SlotHeld(iter([b"x", b"y"]))
    next(closed)
    with pytest.raises(exports.ExportsBusy):
        exports.SlotHeld(iter([]))
    closed.close()  # the client went away mid-download
    assert exports.export_slots_taken() == 0

    dropped = exports.SlotHeld(iter([b"x", b"y"]))
    next(dropped)
    del dropped
    gc.collect()
    assert exports.export_slots_taken() == 0


def test_export_streams_under_asgi_without_buffering(stored, read_key):
    """Django would buffer a sync iterator whole under ASGI; the view hands it an async one."""

    async def fetch():
        response = await AsyncClient().get(URL, headers={"Authorization": f"Bearer {read_key}"})
        assert response.status_code == 200
        assert response.is_async
        return b"".join([chunk async for chunk in response.streaming_content])

    lines = async_to_sync(fetch)().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["e3", "e2", "e1"]


# --- constant memory, PostgreSQL ----------------------------------------------------------

BULK_SQL = """
INSERT INTO audit_auditevent (org_id, event_id, timestamp, received_at, trace_id, actor, slug, method, tool,
    arguments, decision, rule, reason, metadata, duration_ms, outcome, status_code, error, server,
    content_hash, seq, chain_hash)
SELECT %s, 'bulk-' || g, TIMESTAMPTZ '2026-11-01T00:00:00Z' + g * INTERVAL '1 millisecond', now(),
    'trace-' || (g / 4), CASE WHEN g %% 7 = 0 THEN NULL ELSE 'user' || (g %% 13) || '@company.com' END,
    'github-prod', 'tools/call', 'list_issues', jsonb_build_object('repo', 'acme/igris', 'page', g),
    CASE WHEN g %% 10 = 0 THEN 'deny' ELSE 'allow' END,
    jsonb_build_object('id', 'r-1', 'policy', 'github-guardrails', 'index', 0, 'tool', 'list_*',
                       'action', 'allow', 'conditions', '{}'::jsonb),
    'matched rule r-1', jsonb_build_object('env', 'production', 'n', g), 212.5, 'success', 200, NULL, NULL,
    md5(g::text) || md5(g::text), g, md5('c' || g) || md5('c' || g)
FROM generate_series(1, %s) AS g
"""
ROWS = 100_000


def _rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Gauge:
    """Peak growth of live Python memory blocks and of resident memory, sampled as rows flow.

    (sys.getallocatedblocks costs nothing to read, unlike tracemalloc, which would make
    a 100k-row pass several times slower; RSS also sees libpq's buffers.)
    """

    def __init__(self):
        gc.collect()
        self.blocks0, self.rss0 = sys.getallocatedblocks(), _rss_bytes()
        self.blocks = self.rss = 0

    def sample(self):
        self.blocks = max(self.blocks, sys.getallocatedblocks() - self.blocks0)
        self.rss = max(self.rss, _rss_bytes() - self.rss0)


def _consume(chunks, fmt):
    """Stream chunks of lines; returns (rows, sum of seq, gauge)."""
    gauge, rows, seq_total = _Gauge(), 0, 0
    seq_at = exports.CSV_COLUMNS.index("seq")
    for number, chunk in enumerate(chunks):
        for line in chunk.splitlines():
            if fmt == "ndjson":
                seq_total += json.loads(line)["seq"]
            elif not line.startswith(b"id,"):
                seq_total += int(next(csv.reader([line.decode()]))[seq_at])
            else:
                continue
            rows += 1
        if number % 8 == 0:
            gauge.sample()
    gauge.sample()
    return rows, seq_total, gauge


@pytest.mark.postgres
def test_export_of_100k_rows_streams_in_flat_memory(org, warm):
    with connection.cursor() as cursor:
        cursor.execute(BULK_SQL, [org.pk, ROWS])
    assert AuditEvent.objects.filter(org=org).count() == ROWS
    small = ROWS // 10

    for fmt, lines_of in (("ndjson", exports.export_ndjson_lines), ("csv", exports.export_csv_lines)):
        # Through the endpoint: every row arrives exactly once, in bounded memory.
        response = warm(URL, {"format": fmt})
        rows, seq_total, at_100k = _consume(response.streaming_content, fmt)
        assert rows == ROWS
        assert seq_total == ROWS * (ROWS + 1) // 2  # each of seq 1..100000 exactly once

        # The same stream over a tenth of the rows, for comparison.
        first_10k = selectors.event_list(org=org).filter(seq__lte=small)
        rows, seq_total, at_10k = _consume(exports.buffered(lines_of(first_10k)), fmt)
        assert (rows, seq_total) == (small, small * (small + 1) // 2)

        print(
            f"\n{fmt}: peak growth of live Python blocks 10k rows={at_10k.blocks}, 100k rows={at_100k.blocks}; "
            f"RSS growth 10k={at_10k.rss / 2**20:.1f} MiB, 100k={at_100k.rss / 2**20:.1f} MiB"
        )
        # Flat: ten times the rows may not cost more than a quarter more memory.
        assert at_100k.blocks < at_10k.blocks * 1.25 + 5000
        assert at_100k.rss < 32 * 2**20


# --- formula injection, through the export endpoint (the SQL path on PostgreSQL, Python's on SQLite) ---

FORMULAS = ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=HYPERLINK(\"x\")", " =1", "  \n =1", "\u200b=1",
            "\ufeff=1", "\u200e=1", "\u00a0=1", "\u3000=1", "\uff1d1+1", "\ufe661", "\uff0b1", "\ufe621", "\uff0d1",
            "\ufe631", "\uff20x", "\ufe6bx", "\u22121", "\u202e=1"]
HARMLESS = ["a=b", "1-2", "safe", "x @y", "\u200bsafe", " note"]


def test_no_cell_starts_a_formula_whatever_precedes_it(get, org):
    store_events(org, *(wire_event(id=f"f{n}", reason=value) for n, value in enumerate(FORMULAS + HARMLESS)))
    response = get(URL, {"format": "csv"})
    text = b"".join(response.streaming_content).decode()
    rows = {row["id"]: row["reason"] for row in csv.DictReader(io.StringIO(text, newline=""))}
    for n, value in enumerate(FORMULAS):
        assert rows[f"f{n}"] == "'" + value, repr(value)
    for n, value in enumerate(HARMLESS, start=len(FORMULAS)):
        assert rows[f"f{n}"] == value, repr(value)


def test_the_python_and_sql_paths_share_one_rule():
    assert all(exports._is_formula(value) for value in FORMULAS)
    assert not any(exports._is_formula(value) for value in HARMLESS)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # the export's own transaction is the outermost, as in production
@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_a_stream_left_early_leaves_the_connection_usable(org, fmt):
    """A client that disconnects mid-export closes the stream inside COPY: the connection
    must come back clean for the next request of that worker."""
    with connection.cursor() as cursor:
        cursor.execute(BULK_SQL, [org.pk, 5000])
    stream = exports.export_stream(fmt, selectors.event_list(org=org))
    first = next(stream) if fmt == "ndjson" else next(stream) + next(stream)  # CSV: the header, then rows
    assert first.count(b"\n") > 50
    stream.close()
    assert AuditEvent.objects.filter(org=org).count() == 5000
    assert sum(block.count(b"\n") for block in exports.export_stream(fmt, selectors.event_list(org=org))) == 5000 + (
        fmt == "csv"
    )
