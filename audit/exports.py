"""Streamed exports of events as NDJSON or CSV, in constant memory.

Rows are fetched in chunks (`.iterator(chunk_size=CHUNK_SIZE)`: a server-side cursor on
PostgreSQL, fetchmany on SQLite) and each becomes one line of bytes, so memory does not
grow with the number of events. On PostgreSQL the whole export reads inside one
transaction: a consistent snapshot, and a plain (not WITH HOLD) cursor, so rows flow
while the query runs instead of being materialized first.

Formats (both carry the wire form of `audit.wire.event_wire`, in its field order):

* NDJSON: one JSON object per line, UTF-8, values exactly as stored.
* CSV: a header row of the field names, then one row per event (RFC 4180, UTF-8).
  Nested fields (`arguments`, `rule`, `metadata`, `server`) are compact JSON text in
  their cell; null is an empty cell. A text cell that begins with `=`, `+`, `-`, `@`,
  tab or carriage return gets a leading `'` so a spreadsheet shows it instead of
  evaluating it (event content is untrusted); use NDJSON for values byte for byte.

Per-row work is kept to building the wire dict and encoding it; `_wire_rows` is the
one seam where a faster path (e.g. JSON built by PostgreSQL) can replace it.
"""

import csv
import json
from collections.abc import Iterable, Iterator

from django.db import connections, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from audit.models import AuditEvent
from audit.wire import event_wire

CHUNK_SIZE = 2000
BUFFER_BYTES = 64 * 1024

CSV_COLUMNS = (
    "id", "timestamp", "trace_id", "actor", "slug", "method", "tool", "arguments", "decision", "rule", "reason",
    "metadata", "duration_ms", "outcome", "status_code", "error", "server", "received_at", "seq", "chain_hash",
)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _events(events: QuerySet | Iterable[AuditEvent]) -> Iterator[AuditEvent]:
    if not isinstance(events, QuerySet):
        yield from events
        return
    if connections[events.db].vendor == "postgresql":
        # savepoint=False: one transaction in production, no extra statements inside a test's.
        with transaction.atomic(using=events.db, savepoint=False):
            yield from events.iterator(chunk_size=CHUNK_SIZE)
    else:
        yield from events.iterator(chunk_size=CHUNK_SIZE)


def _wire_rows(events) -> Iterator[dict]:
    for event in _events(events):
        yield event_wire(event)


# --- PostgreSQL builds the lines itself -------------------------------------------------
# Per-row Python (model instance, wire dict, json.dumps) bounded the export far below
# what COPY TO reads (bench/REPORT.md). On PostgreSQL each line is built by the query,
# in the wire form of `event_wire` — same fields and order, UTC timestamps with
# microseconds, duration_ms as a float (212.0) — and passes through Python as text.
# Nested objects print as PostgreSQL prints jsonb (a space after `:` and `,`): the
# same JSON values as the Python path, not the same bytes.

_T = '"audit_auditevent".'
_PG_TIME = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
_PG_FLOAT = "CASE WHEN {0} = trunc({0}) AND abs({0}) < 1e15 THEN trunc({0})::bigint::text || '.0' ELSE {0}::text END"
_PG_COLUMNS = {
    "id": _T + '"event_id"',
    "timestamp": _PG_TIME.format(_T + '"timestamp"'),
    "received_at": _PG_TIME.format(_T + '"received_at"'),
    "duration_ms": _PG_FLOAT.format(_T + '"duration_ms"'),
}
_PG_JSON = ("arguments", "rule", "metadata", "server")
# Cells that can hold neither a formula prefix nor a comma, quote, CR or LF (numbers,
# formatted times, hex, choices, slugs): written as they are.
_PG_PLAIN = ("timestamp", "received_at", "duration_ms", "status_code", "seq", "chain_hash", "decision", "outcome", "slug")
_PG_FORMULA_PREFIXES = "'=', '+', '-', '@', E'\\t', E'\\r'"  # _FORMULA_PREFIXES


def _pg_column(name):
    return _PG_COLUMNS.get(name, _T + f'"{name}"')


def _pg_ndjson_sql():
    fields = ", ".join(
        f"({_pg_column(name)})::json AS {name}" if name == "duration_ms" else f"{_pg_column(name)} AS {name}"
        for name in CSV_COLUMNS
    )
    return f"(SELECT row_to_json(r)::text FROM (SELECT {fields}) r)"


def _pg_csv_cell(name):
    """A cell as csv.writer writes _cell(value), quoted only when it must be (QUOTE_MINIMAL).

    Inline expressions, no subquery per cell: measured twice as fast.
    """
    value = _pg_column(name)
    if name in _PG_PLAIN:
        return f"coalesce(({value})::text, '')"
    if name in _PG_JSON:  # JSON text holds quotes, so always quoted (csv.writer leaves a bare {} unquoted)
        return f"""coalesce('"' || replace(({value})::text, '"', '""') || '"', '')"""
    defused = f"CASE WHEN left({value}, 1) IN ({_PG_FORMULA_PREFIXES}) THEN '''' || {value} ELSE {value} END"
    quoted = f"""'"' || replace({defused}, '"', '""') || '"'"""
    return f"""coalesce(CASE WHEN {value} ~ '[",\\r\\n]' THEN {quoted} ELSE {defused} END, '')"""


def _pg_csv_sql():
    return "concat_ws(',', " + ", ".join(_pg_csv_cell(name) for name in CSV_COLUMNS) + ") || E'\\r\\n'"


def _pg_lines(events: QuerySet, line_sql: str) -> Iterator[bytes]:
    lines = events.annotate(wire_line=RawSQL(line_sql, ())).values_list("wire_line", flat=True)
    with transaction.atomic(using=events.db, savepoint=False):
        for line in lines.iterator(chunk_size=CHUNK_SIZE):
            yield line.encode()


def _on_postgres(events) -> bool:
    return isinstance(events, QuerySet) and connections[events.db].vendor == "postgresql"


def export_ndjson_lines(events: QuerySet | Iterable[AuditEvent]) -> Iterator[bytes]:
    """One UTF-8 JSON line per event (a QuerySet is read in chunks)."""
    if _on_postgres(events):
        yield from (line + b"\n" for line in _pg_lines(events, _pg_ndjson_sql()))
        return
    for row in _wire_rows(events):
        yield (_json(row) + "\n").encode()


class _Line:
    """csv.writer target that hands back the row it was given."""

    def write(self, text):
        return text


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return _json(value)
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def export_csv_lines(events: QuerySet | Iterable[AuditEvent]) -> Iterator[bytes]:
    """A header line, then one CSV line per event (a QuerySet is read in chunks)."""
    writer = csv.writer(_Line(), lineterminator="\r\n")
    yield writer.writerow(CSV_COLUMNS).encode()
    if _on_postgres(events):
        yield from _pg_lines(events, _pg_csv_sql())
        return
    for row in _wire_rows(events):
        yield writer.writerow([_cell(row[column]) for column in CSV_COLUMNS]).encode()


def buffered(lines: Iterable[bytes], *, size: int = BUFFER_BYTES) -> Iterator[bytes]:
    """Join lines into ~`size`-byte chunks: fewer, larger writes to the socket."""
    parts, length = [], 0
    for line in lines:
        parts.append(line)
        length += len(line)
        if length >= size:
            yield b"".join(parts)
            parts, length = [], 0
    if parts:
        yield b"".join(parts)
