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


def export_ndjson_lines(events: QuerySet | Iterable[AuditEvent]) -> Iterator[bytes]:
    """One UTF-8 JSON line per event (a QuerySet is read in chunks)."""
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
