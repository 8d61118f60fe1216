"""Parsing and validating events at the door (SPEC §1, §2).

Event content comes from agents and is hostile until proven otherwise. Every item
is checked field by field and turned into its *clean wire form*: a JSON-safe dict
with every SPEC §1 field present, values normalized so they survive a round trip
through either database unchanged (which the hash chain depends on).
"""

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone

from audit import chain
from audit.models import Decision, Outcome


class BodyError(ValueError):
    """The request body as a whole cannot be read (answered with 400)."""


MAX_NESTING = 32
MAX_METADATA_KEYS = 64

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{2,63}$")
_TIMESTAMP_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_DECISIONS = frozenset(Decision.values)
_OUTCOMES = frozenset(Outcome.values)
_RULE_KEYS = {"id": str, "policy": str, "index": int, "tool": str, "action": str, "conditions": dict}
_SERVER_KEYS = ("name", "version")


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _loads(text):
    return json.loads(text, parse_constant=_reject_constant)


def parse_body(body: bytes, content_type: str) -> list:
    """Split a request body into raw items: one object, a JSON array, or NDJSON."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in ("application/json", "application/x-ndjson"):
        raise BodyError(
            f"unsupported Content-Type {media_type or '(none)'!r}: "
            "send application/json (an event or an array) or application/x-ndjson"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"body is not valid UTF-8 (byte {exc.start})") from None
    if media_type == "application/x-ndjson":
        items = []
        # Only \n ends a record: JSON strings may hold U+2028/U+2029/U+0085 raw, which
        # str.splitlines() would also split on.
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                items.append(_parse_json(line, where=f"line {number}"))
        if not items:
            raise BodyError("empty batch: the NDJSON body holds no events")
        return items
    data = _parse_json(text, where="body")
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        if not data:
            raise BodyError("empty batch: the array holds no events")
        return data
    raise BodyError(f"body must be an event object or an array of events, not {_type_name(data)}")


def _parse_json(text, *, where):
    try:
        return _loads(text)
    except json.JSONDecodeError as exc:
        raise BodyError(f"malformed JSON in {where}: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BodyError(f"malformed JSON in {where}: nested too deeply") from None
    except ValueError as exc:
        raise BodyError(f"malformed JSON in {where}: {exc}") from None


def _type_name(value):
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


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


def _clean_json(value, path, errors, depth=0):
    """Normalize a JSON value for storage; record why it cannot be stored."""
    if depth > MAX_NESTING:
        errors[path] = f"nested deeper than {MAX_NESTING} levels"
        return None
    if isinstance(value, str):
        return _clean_text(value, path, errors)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            errors[path] = "must be a finite number"
            return None
        if value == 0:
            return 0.0  # PostgreSQL's numeric has no negative zero
        if value.is_integer() and abs(value) >= 1e16:
            return int(value)  # jsonb would print it back as an integer anyway
        return value
    if isinstance(value, list):
        return [_clean_json(item, f"{path}[{index}]", errors, depth + 1) for index, item in enumerate(value)]
    if isinstance(value, dict):
        return {
            _clean_text(key, f"{path} key", errors): _clean_json(item, f"{path}.{key}", errors, depth + 1)
            for key, item in value.items()
        }
    errors[path] = "is not a JSON value"
    return None


def _clean_text(value, path, errors):
    if "\x00" in value:
        errors[path] = "must not contain NUL characters"
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            errors[path] = "must be valid Unicode (no lone surrogates)"
    return value


def _string(raw, key, errors, *, max_length, required=False, nullable=True, pattern=None, hint=""):
    value = raw.get(key)
    if value is None:
        if required:
            errors[key] = "is required" if key not in raw else "must not be null"
        elif key in raw and not nullable:
            errors[key] = "must not be null"
        return None
    if not isinstance(value, str):
        errors[key] = f"must be a string, not {_type_name(value)}"
        return None
    if required and not value:
        errors[key] = "must not be empty"
    elif len(value) > max_length:
        errors[key] = f"must be at most {max_length} characters (got {len(value)})"
    elif pattern is not None and not pattern.match(value):
        errors[key] = f"must match {pattern.pattern}{hint}"
    return _clean_text(value, key, errors)


def _choice(raw, key, choices, errors):
    value = raw.get(key)
    if value is None:
        errors[key] = "is required"
    elif value not in choices:
        errors[key] = f"must be one of {', '.join(sorted(choices))}; got {json.dumps(value)[:80]}"
    return value


def _object(raw, key, errors):
    value = raw.get(key)
    if value is not None and not isinstance(value, dict):
        errors[key] = f"must be an object or null, not {_type_name(value)}"
        return None
    return None if value is None else _clean_json(value, key, errors)


def _clean_rule(raw, errors):
    rule = _object(raw, "rule", errors)
    if rule:
        for key, expected in _RULE_KEYS.items():
            value = rule.get(key)
            if value is not None and (not isinstance(value, expected) or isinstance(value, bool)):
                errors[f"rule.{key}"] = f"must be {'an integer' if expected is int else _type_name(expected())}"
    return rule


def _clean_metadata(raw, errors):
    metadata = raw.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        errors["metadata"] = f"must be a flat object, not {_type_name(metadata)}"
        return {}
    if len(metadata) > MAX_METADATA_KEYS:
        errors["metadata"] = f"must have at most {MAX_METADATA_KEYS} keys"
    for key, value in metadata.items():
        if not key or len(key) > 128 or _CONTROL_RE.search(key):
            errors["metadata"] = f"key {json.dumps(key)[:80]} must be 1–128 printable characters"
        elif not isinstance(value, (str, int, float)):
            errors[f"metadata.{key}"] = f"must be a string, number or boolean, not {_type_name(value)}"
    return _clean_json(metadata, "metadata", errors)


def _clean_server(raw, errors):
    server = _object(raw, "server", errors)
    if server is not None:
        extra = set(server) - set(_SERVER_KEYS)
        if extra:
            errors["server"] = f"has unknown fields: {', '.join(sorted(extra))} (allowed: name, version)"
        for key in _SERVER_KEYS:
            if server.get(key) is not None and not isinstance(server[key], str):
                errors[f"server.{key}"] = "must be a string"
    return server


def _clean_number(raw, key, errors, *, minimum, maximum, integer):
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        errors[key] = f"must be {'an integer' if integer else 'a number'}, not {_type_name(value)}"
        return None
    if not (minimum <= value <= maximum):
        errors[key] = f"must be between {minimum} and {maximum}"
        return None
    return value if integer else float(value) + 0.0


def validate_event(raw, *, max_bytes: int):
    """Return (clean wire event or None, errors by field)."""
    if not isinstance(raw, dict):
        return None, {"event": f"must be an object, not {_type_name(raw)}"}
    errors = {}
    unknown = set(raw) - set(chain.WIRE_FIELDS)
    if unknown:
        names = ", ".join(sorted(json.dumps(name)[:40] for name in unknown))
        errors["event"] = f"unknown fields: {names} (SPEC §1 lists the allowed ones)"

    event = {
        "id": _string(raw, "id", errors, max_length=64, pattern=_ID_RE, hint=" (letters, digits, _ . : -)"),
        "timestamp": None,
        "trace_id": _string(raw, "trace_id", errors, max_length=128, required=True),
        "actor": _string(raw, "actor", errors, max_length=254),
        "slug": _string(raw, "slug", errors, max_length=64, required=True, pattern=_SLUG_RE),
        "method": _string(raw, "method", errors, max_length=128, required=True),
        "tool": _string(raw, "tool", errors, max_length=128),
        "arguments": _object(raw, "arguments", errors),
        "decision": _choice(raw, "decision", _DECISIONS, errors),
        "rule": _clean_rule(raw, errors),
        "reason": _string(raw, "reason", errors, max_length=10_000),
        "metadata": _clean_metadata(raw, errors),
        "duration_ms": _clean_number(raw, "duration_ms", errors, minimum=0, maximum=1e12, integer=False),
        "outcome": _choice(raw, "outcome", _OUTCOMES, errors),
        "status_code": _clean_number(raw, "status_code", errors, minimum=100, maximum=599, integer=True),
        "error": _string(raw, "error", errors, max_length=100_000),
        "server": _clean_server(raw, errors),
    }
    for key in ("trace_id", "method", "tool", "actor"):
        if isinstance(event[key], str) and _CONTROL_RE.search(event[key]):
            errors.setdefault(key, "must not contain control characters")
    if event["method"] == "tools/call" and not event["tool"]:
        errors.setdefault("tool", "is required when method is tools/call")

    timestamp = raw.get("timestamp")
    if timestamp is None:
        errors["timestamp"] = "is required"
    elif not isinstance(timestamp, str):
        errors["timestamp"] = f"must be an RFC 3339 string, not {_type_name(timestamp)}"
    else:
        try:
            event["timestamp"] = format_timestamp(parse_timestamp(timestamp))
        except ValueError as exc:
            errors["timestamp"] = f"{timestamp[:40]!r} {exc}"

    if errors:
        return None, errors
    size = len(chain.canonical_bytes(event))
    if size > max_bytes:
        return None, {"event": f"is {size} bytes; the limit is {max_bytes}"}
    return event, {}
