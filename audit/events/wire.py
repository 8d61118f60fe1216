"""The wire form (SPEC §1) of a stored event, and the one way Lens writes and reads times.

Standard library only (the offline verifier formats times too).
"""

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from operator import attrgetter

from audit.events.fields import OUTPUT_FIELDS, OUTPUT_NAMES, TIME

_TIMESTAMP_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)

# Compact JSON, UTF-8 as is: how Lens writes an event as a line (NDJSON, evidence).
wire_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

# Model columns read to build the wire form; selectors use .only(*WIRE_COLUMNS).
WIRE_COLUMNS = tuple(field.storage for field in OUTPUT_FIELDS)
_read_columns = attrgetter(*WIRE_COLUMNS)
_TIME_NAMES = tuple(field.name for field in OUTPUT_FIELDS if field.kind == TIME)


def format_timestamp(value: datetime) -> str:
    # isoformat pads the year to four digits, which strftime("%Y") does not below 1000.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_timestamp(value: str) -> datetime:
    """RFC 3339 with a zone; fractions beyond microseconds are truncated."""
    match = _TIMESTAMP_RE.match(value)
    if not match:
        raise ValueError("must be an RFC 3339 timestamp with a zone, e.g. 2026-11-23T09:15:02.412Z")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu:
        zone = UTC
    else:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24):
            raise ValueError("has an out-of-range zone offset")
        zone = timezone(-offset if sign == "-" else offset)
    microsecond = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), microsecond, zone)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("is not a real date and time") from None


def event_wire(event) -> dict:
    """SPEC §1 fields in order, then what Lens adds: received_at, seq, chain_hash.

    `event` is an AuditEvent, or any row with its columns as attributes.
    """
    wire = dict(zip(OUTPUT_NAMES, _read_columns(event)))
    for name in _TIME_NAMES:
        if wire[name] is not None:
            wire[name] = format_timestamp(wire[name])
    return wire
