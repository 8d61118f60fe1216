"""Parsing and validating events at the door (SPEC §1, §2).

Event content comes from agents and is hostile until proven otherwise. Every item
is checked field by field and turned into its *clean wire form*: a JSON-safe dict
with every SPEC §1 field present, values normalized so they survive a round trip
through either database unchanged (which the hash chain depends on).
"""

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from django.conf import settings

from audit.events import fields as f
from audit.events.wire import format_timestamp, parse_timestamp
from audit.integrity.chain import canonical_bytes


class BodyError(ValueError):
    """The request body as a whole cannot be read (answered with 400)."""


MAX_NESTING = 32
MAX_METADATA_KEYS = 64

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_PATTERNS = {field.name: re.compile(field.pattern) for field in f.SENDER_FIELDS if field.pattern}
_KNOWN = frozenset(f.WIRE_NAMES)
_RULE_KEYS = {"id": str, "policy": str, "index": int, "tool": str, "action": str, "conditions": dict}
_SERVER_KEYS = ("name", "version")


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


# orjson reads an integer beyond 64 bits as a float, silently: a body holding any run of
# 19 digits goes to the standard library, which keeps such integers exact. Found with
# bytes.translate and a substring search (C loops, ~1 ms a megabyte; a regex took longer
# than parsing the body).
_DIGITS_AS_ZERO = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def _orjson_reads_exactly(body: bytes) -> bool:
    return _LONG_DIGIT_RUN not in body.translate(_DIGITS_AS_ZERO)


def _loads(text, *, fast=True):
    """orjson where it reads exactly what the standard library would (`fast`: no long
    digit run in the body); the standard library for everything else, so an unusual body
    (a huge integer, NaN, a lone surrogate, deep nesting) is read, or refused with the same
    message, as before."""
    if fast:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
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
    fast = _orjson_reads_exactly(body)
    if media_type == "application/x-ndjson":
        items = []
        # Only \n ends a record: JSON strings may hold U+2028/U+2029/U+0085 raw, which
        # str.splitlines() would also split on.
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                items.append(_parse_json(line, where=f"line {number}", fast=fast))
        if not items:
            raise BodyError("empty batch: the NDJSON body holds no events")
        return items
    data = _parse_json(text, where="body", fast=fast)
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        if not data:
            raise BodyError("empty batch: the array holds no events")
        return data
    raise BodyError(f"body must be an event object or an array of events, not {_type_name(data)}")


def _parse_json(text, *, where, fast):
    try:
        return _loads(text, fast=fast)
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




def _string(raw, field, errors):
    key = field.name
    value = raw.get(key)
    if value is None:
        if field.required:
            errors[key] = "is required" if key not in raw else "must not be null"
        return None
    if not isinstance(value, str):
        errors[key] = f"must be a string, not {_type_name(value)}"
        return None
    if field.required and not value:
        errors[key] = "must not be empty"
    elif len(value) > field.max_length:
        errors[key] = f"must be at most {field.max_length} characters (got {len(value)})"
    elif field.pattern and not _PATTERNS[key].match(value):
        errors[key] = f"must match {field.pattern}{field.pattern_hint}"
    elif field.printable and _CONTROL_RE.search(value):
        errors[key] = "must not contain control characters"
    elif value in field.reserved:
        errors[key] = f"{value!r} is reserved (it would not lead to its own URL); choose another"
    return _clean_text(value, key, errors)


def _time(raw, field, errors):
    key, value = field.name, raw.get(field.name)
    if value is None:
        errors[key] = "is required"
    elif not isinstance(value, str):
        errors[key] = f"must be an RFC 3339 string, not {_type_name(value)}"
    else:
        try:
            return format_timestamp(parse_timestamp(value))
        except ValueError as exc:
            errors[key] = f"{value[:40]!r} {exc}"
    return None


def _choice(raw, field, errors):
    value = raw.get(field.name)
    if value is None:
        errors[field.name] = "is required"
    elif value not in field.choices:
        errors[field.name] = f"must be one of {', '.join(sorted(field.choices))}; got {json.dumps(value)[:80]}"
    return value


def _object(raw, field, errors):
    key, value = field.name, raw.get(field.name)
    if value is not None and not isinstance(value, dict):
        errors[key] = f"must be an object or null, not {_type_name(value)}"
        return None
    return None if value is None else _clean_json(value, key, errors)


def _rule(raw, field, errors):
    rule = _object(raw, field, errors)
    if rule:
        for key, expected in _RULE_KEYS.items():
            value = rule.get(key)
            if value is not None and (not isinstance(value, expected) or isinstance(value, bool)):
                errors[f"rule.{key}"] = f"must be {'an integer' if expected is int else _type_name(expected())}"
    return rule


def _metadata(raw, field, errors):
    metadata = raw.get(field.name)
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


def _server(raw, field, errors):
    server = _object(raw, field, errors)
    if server is not None:
        extra = set(server) - set(_SERVER_KEYS)
        if extra:
            errors["server"] = f"has unknown fields: {', '.join(sorted(extra))} (allowed: name, version)"
        for key in _SERVER_KEYS:
            if server.get(key) is not None and not isinstance(server[key], str):
                errors[f"server.{key}"] = "must be a string"
    return server


def _number(raw, field, errors):
    key, value = field.name, raw.get(field.name)
    integer = field.kind == f.INTEGER
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        errors[key] = f"must be {'an integer' if integer else 'a number'}, not {_type_name(value)}"
        return None
    if not (field.minimum <= value <= field.maximum):
        errors[key] = f"must be between {field.minimum} and {field.maximum}"
        return None
    return value if integer else float(value) + 0.0


_CHECKS = {
    f.TEXT: _string, f.TIME: _time, f.CHOICE: _choice, f.NUMBER: _number, f.INTEGER: _number,
    f.OBJECT: _object, f.RULE: _rule, f.METADATA: _metadata, f.SERVER: _server,
}


def event_id(event: dict, digest: str) -> str:
    """The event's id, or the one Lens gives an event sent without: derived from its
    content hash, so resending the same event is a duplicate, not a second event."""
    return event["id"] or f"lens-{digest[:40]}"


@dataclass(frozen=True)
class TimeWindow:
    """The timestamps an event may carry, as format_timestamp writes them (fixed width, so
    comparing the text compares the times): a gateway's clock may run a little ahead
    (LENS_MAX_CLOCK_SKEW_SECONDS), and nothing older than LENS_MAX_EVENT_AGE_DAYS is
    plausible. Without the bound, an event dated 9999-12-31 would top every newest-first
    list forever and match every `since=` window."""

    earliest: str
    latest: str

    @classmethod
    def now(cls) -> "TimeWindow":
        now = datetime.now(UTC)
        return cls(
            earliest=format_timestamp(now - timedelta(days=settings.LENS_MAX_EVENT_AGE_DAYS)),
            latest=format_timestamp(now + timedelta(seconds=settings.LENS_MAX_CLOCK_SKEW_SECONDS)),
        )

    def errors(self, timestamp: str) -> dict:
        if timestamp > self.latest:
            return {"timestamp": f"is in the future: later than {self.latest}, now plus the "
                                 f"{settings.LENS_MAX_CLOCK_SKEW_SECONDS} s of clock skew allowed"}
        if timestamp < self.earliest:
            return {"timestamp": f"is older than {settings.LENS_MAX_EVENT_AGE_DAYS} days (before {self.earliest})"}
        return {}


def validate_event(raw, *, max_bytes: int, window: TimeWindow | None = None):
    """Return (clean wire event or None, errors by field). `window` defaults to now's."""
    if not isinstance(raw, dict):
        return None, {"event": f"must be an object, not {_type_name(raw)}"}
    errors = {}
    unknown = raw.keys() - _KNOWN
    if unknown:
        names = ", ".join(sorted(json.dumps(name)[:40] for name in unknown))
        errors["event"] = f"unknown fields: {names} (SPEC §1 lists the allowed ones)"
    event = {field.name: _CHECKS[field.kind](raw, field, errors) for field in f.SENDER_FIELDS}
    if event["timestamp"] is not None:
        errors.update((window or TimeWindow.now()).errors(event["timestamp"]))
    for field in f.SENDER_FIELDS:
        if field.required_when and event[field.required_when[0]] == field.required_when[1] and not event[field.name]:
            errors.setdefault(field.name, f"is required when {field.required_when[0]} is {field.required_when[1]}")
    if errors:
        return None, errors
    size = len(canonical_bytes(event))
    if size > max_bytes:
        return None, {"event": f"is {size} bytes; the limit is {max_bytes}"}
    return event, {}
