"""Streamed exports of events as NDJSON or CSV, in constant memory.

Rows are fetched in chunks (`.iterator(chunk_size=CHUNK_SIZE)`: a server-side cursor on
PostgreSQL, fetchmany on SQLite) and each becomes one line of bytes, so memory does not
grow with the number of events. On PostgreSQL the whole export reads inside one
transaction: a consistent snapshot, and a plain (not WITH HOLD) cursor, so rows flow
while the query runs instead of being materialized first.

Formats (both carry the wire form of `audit.events.wire.event_wire`, in its field order):

* NDJSON: one JSON object per line, UTF-8, values exactly as stored.
* CSV: a header row of the field names, then one row per event (RFC 4180, UTF-8).
  Nested fields (`arguments`, `rule`, `metadata`, `server`) are compact JSON text in
  their cell; null is an empty cell. A text cell that a spreadsheet would evaluate
  (FORMULA_PATTERN: `=`, `+`, `-`, `@`, their fullwidth and small forms or the minus
  sign, after any run of spaces and invisible characters; or a leading tab or line
  break) gets a leading `'` so it is shown, not evaluated (event content is untrusted);
  use NDJSON for values byte for byte.

`export_stream` is what the export endpoint sends: on PostgreSQL the query builds every
line and `COPY … TO STDOUT` streams them, so Python handles 64 KiB blocks, not rows;
elsewhere (and for a page's rows) the lines are built in Python from the wire dict.
"""

import csv
import re
import threading
import weakref
from collections.abc import Iterable, Iterator

import psycopg
from django.conf import settings
from django.db import connections
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from audit.events.fields import INTEGER, NUMBER, OUTPUT_FIELDS, OUTPUT_NAMES, TIME
from audit.events.models import AuditEvent
from audit.events.reading import CHUNK_SIZE, iter_rows, read_snapshot
from audit.events.wire import event_wire, wire_json

BUFFER_BYTES = 64 * 1024

CSV_COLUMNS = OUTPUT_NAMES
# What a spreadsheet would evaluate: a formula sign after spaces and invisible characters
# (a BOM, zero-width and direction marks), or a leading tab or line break. One pattern, of
# literal characters only, read alike by Python's re and PostgreSQL's `~` (the SQL path).
_INVISIBLE = " \t\n\v\f\r\x1c-\x1f\x85\xa0\xad\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u2069\u3000\ufeff"
_FORMULA_SIGNS = "=+@\uff1d\ufe66\uff0b\ufe62\uff20\ufe6b\uff0d\ufe63\u2212-"  # "-" last: literal in a class
FORMULA_PATTERN = f"^[\t\r\n]|^[{_INVISIBLE}]*[{_FORMULA_SIGNS}]"
_is_formula = re.compile(FORMULA_PATTERN).match


def _events(events: QuerySet | Iterable[AuditEvent]) -> Iterator[AuditEvent]:
    if isinstance(events, QuerySet):
        return iter_rows(events, chunk_size=CHUNK_SIZE)
    return iter(events)


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
_PG_FORMULA = "'" + FORMULA_PATTERN.replace("'", "''") + "'"


def _pg_column(field):
    column = _T + f'"{field.storage}"'
    if field.kind == TIME:
        return _PG_TIME.format(column)
    if field.kind == NUMBER:
        return _PG_FLOAT.format(column)
    return column


def _pg_json_value(field):
    """A field's value as JSON text: strings through to_json (PostgreSQL's escaping), JSON
    columns as jsonb prints them, numbers and formatted times as they are; null as null."""
    value = _pg_column(field)
    if field.is_json or field.kind in (NUMBER, INTEGER):
        return f"coalesce(({value})::text, 'null')"
    if field.kind == TIME:
        return f"""coalesce('"' || {value} || '"', 'null')"""
    return f"coalesce(to_json({value})::text, 'null')"


def _pg_ndjson_sql():
    # Concatenated, not row_to_json over a subquery per row: measured 2x faster in PostgreSQL,
    # which builds the lines (bench: PostgreSQL alone made them at 0.55x raw COPY's rate).
    members = " || ',' || ".join(f"""'"{field.name}":' || {_pg_json_value(field)}""" for field in OUTPUT_FIELDS)
    return f"'{{' || {members} || '}}'"


def _pg_csv_cell(field):
    """A cell as csv.writer writes _cell(value), quoted only when it must be (QUOTE_MINIMAL).

    Inline expressions, no subquery per cell: measured twice as fast. Cells the
    declaration calls plain (numbers, formatted times, hex, choices, slugs) can hold
    neither a formula prefix nor a comma, quote, CR or LF: written as they are.
    """
    value = _pg_column(field)
    if field.csv_plain:
        return f"coalesce(({value})::text, '')"
    if field.is_json:  # JSON text holds quotes, so always quoted (csv.writer leaves a bare {} unquoted)
        return f"""coalesce('"' || replace(({value})::text, '"', '""') || '"', '')"""
    defused = f"CASE WHEN {value} ~ {_PG_FORMULA} THEN '''' || {value} ELSE {value} END"
    quoted = f"""'"' || replace({defused}, '"', '""') || '"'"""
    return f"""coalesce(CASE WHEN {value} ~ '[",\\r\\n]' THEN {quoted} ELSE {defused} END, '')"""


def _pg_csv_sql():
    # The line ends in CR: COPY adds the LF.
    return "concat_ws(',', " + ", ".join(_pg_csv_cell(field) for field in OUTPUT_FIELDS) + ") || E'\\r'"


# COPY … TO STDOUT (text format) escapes a backslash and six control characters in each
# line; undone here, per buffer, only when one holds a backslash.
_COPY_ESCAPE = re.compile(rb"\\([\\bfnrtv])")
_COPY_UNESCAPE = {b"\\": b"\\", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}


def _copy_unescape(data: bytes) -> bytes:
    if b"\\" not in data:
        return data
    return _COPY_ESCAPE.sub(lambda match: _COPY_UNESCAPE[match.group(1)], data)


def _pg_blocks(events: QuerySet, line_sql: str, *, in_index_order: bool = False) -> Iterator[bytes]:
    """The query's lines as `COPY (…) TO STDOUT` sends them, in ~BUFFER_BYTES blocks.

    A server-side cursor hands Python one row at a time through Django (bench: 80k rows/s
    beside 475k for COPY TO); COPY streams the rows without a round trip per fetch and
    psycopg passes them on as bytes, so Python touches a buffer, not a row. COPY ends each
    row with a line feed, which is the NDJSON line's end (CSV lines end in `\r`, so a row
    is `…\r\n`). One snapshot, as before (read_snapshot).

    `in_index_order`: read along the (org, timestamp, id) index instead of letting the planner
    sort. For a whole organization (or a time window) it prefers a scan and a sort, which is
    cheaper in total but sends nothing until every row is sorted, in temporary files the size
    of the export: at 200k events the first row came after 160-200 ms instead of 2, and at a
    million, beside 20 readers, a 20-second window saw three rows a second. Only where that
    index answers the filters."""
    lines = events.annotate(wire_line=RawSQL(line_sql, ())).values_list("wire_line", flat=True)
    sql, params = lines.query.get_compiler(using=events.db).as_sql()
    with read_snapshot(events.db), connections[events.db].cursor() as cursor:
        if in_index_order:
            cursor.execute("SET LOCAL enable_sort = off")  # this transaction only
        # COPY takes no bound parameters: the values are quoted into the statement by psycopg.
        query = psycopg.ClientCursor(cursor.connection).mogrify(sql, params)
        with cursor.copy(f"COPY ({query}) TO STDOUT") as copy:
            parts, length = [], 0
            for row in copy:
                parts.append(row)
                length += len(row)
                if length >= BUFFER_BYTES:
                    yield _copy_unescape(b"".join(parts))
                    parts, length = [], 0
            if parts:
                yield _copy_unescape(b"".join(parts))
        if in_index_order:
            cursor.execute("RESET enable_sort")  # for whatever else an enclosing transaction reads


def _on_postgres(events) -> bool:
    return isinstance(events, QuerySet) and connections[events.db].vendor == "postgresql"


def export_stream(
    fmt: str, events: QuerySet | Iterable[AuditEvent], *, filters: Iterable[str] | None = None,
) -> Iterator[bytes]:
    """The whole export in `fmt` ("ndjson" or "csv"), in blocks of about BUFFER_BYTES.

    On PostgreSQL a QuerySet's lines are built by the query and streamed by COPY; other
    events go through Python, line by line (export_ndjson_lines, export_csv_lines).
    `filters`: the names of the filters `events` has, to choose how PostgreSQL reads them
    (None: not known, so the planner chooses).
    """
    if _on_postgres(events):
        if fmt == "csv":
            yield _CSV_HEADER
        in_index_order = filters is not None and not set(filters) - {"since", "until"}
        yield from _pg_blocks(events, _pg_csv_sql() if fmt == "csv" else _pg_ndjson_sql(), in_index_order=in_index_order)
        return
    yield from buffered(export_csv_lines(events) if fmt == "csv" else export_ndjson_lines(events))


def export_ndjson_lines(events: QuerySet | Iterable[AuditEvent]) -> Iterator[bytes]:
    """One UTF-8 JSON line per event (a QuerySet is read in chunks)."""
    for row in _wire_rows(events):
        yield (wire_json(row) + "\n").encode()


class _Line:
    """csv.writer target that hands back the row it was given."""

    def write(self, text):
        return text


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):  # as PostgreSQL writes a boolean as text (the SQL path)
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return wire_json(value)
    if isinstance(value, str) and _is_formula(value):
        return "'" + value
    return value


def export_csv_lines(events: QuerySet | Iterable[AuditEvent]) -> Iterator[bytes]:
    """A header line, then one CSV line per event (a QuerySet is read in chunks)."""
    writer = csv.writer(_Line(), lineterminator="\r\n")
    yield _CSV_HEADER
    for row in _wire_rows(events):
        yield writer.writerow([_cell(row[column]) for column in CSV_COLUMNS]).encode()


_CSV_HEADER = csv.writer(_Line(), lineterminator="\r\n").writerow(CSV_COLUMNS).encode()


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


# --- slots: how many exports a process streams at once -----------------------------------
# An export holds a database connection for its whole download, at the client's pace; a
# process's connections are few (a pool under ASGI). Past LENS_EXPORTS_PER_PROCESS the
# endpoint answers 503 before it starts. A slot is taken at the first block, not when the
# response is made, so a response dropped unread (a client gone before the first byte)
# never held one; the check up front and the taking are apart, so a late taker waits.

SLOT_WAIT_SECONDS = 60


class ExportsBusy(Exception):
    """Every export slot of this process is taken (settings.LENS_EXPORTS_PER_PROCESS)."""


_slots = threading.Condition()
_slots_taken = 0


def _slot_free() -> bool:
    return _slots_taken < settings.LENS_EXPORTS_PER_PROCESS


def _slot_give_back() -> None:
    global _slots_taken
    with _slots:
        _slots_taken -= 1
        _slots.notify()


def export_slots_taken() -> int:
    return _slots_taken


class SlotHeld:
    """`chunks` streamed in one of the process's export slots: ExportsBusy at once when none
    is free, else the slot is held from the first block until they end, fail or are closed
    (or, left unclosed, are collected)."""

    def __init__(self, chunks: Iterator[bytes]):
        with _slots:
            if not _slot_free():
                raise ExportsBusy(f"{_slots_taken} exports are streaming from this process")
        self._chunks = chunks
        self._give_back = None

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self._give_back is None:
            self._take()
        try:
            return next(self._chunks)
        except BaseException:  # the end, or an error: either way this export is over
            self.close()
            raise

    def _take(self) -> None:
        global _slots_taken
        with _slots:
            if not _slots.wait_for(_slot_free, timeout=SLOT_WAIT_SECONDS):
                raise ExportsBusy(f"no export slot came free in {SLOT_WAIT_SECONDS} s")
            _slots_taken += 1
        self._give_back = weakref.finalize(self, _slot_give_back)  # runs once, whichever comes first

    def close(self) -> None:
        if self._give_back is not None:
            self._give_back()
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
