"""The full text of an event that bare words and phrases search (SPEC §7), as one string.

Built in Python at ingest and stored in the `search_text` column, so that both databases
search exactly the same text, lower-cased the same way (Python's Unicode `str.lower`;
SQLite's own LOWER knows only ASCII). Which fields it holds is the declaration's
`searched` flag (audit/events/fields.py); how each kind contributes:

* text fields: the value;
* `arguments`: every key and every scalar value, at any depth (numbers and booleans
  as JSON writes them; null is nothing);
* `metadata`: the values (not the keys);
* `rule`: its `id` and `policy`.

Values are separated by a line break, which a query cannot contain, so a phrase never
matches across two values. Standard library only.
"""

import json

from audit.events.fields import METADATA, OBJECT, RULE, SEARCHED_FIELDS

SEPARATOR = "\n"
RULE_KEYS = ("id", "policy")


def _scalar(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _walk(value, out: list) -> None:
    """Keys and scalar values of a JSON value, depth first."""
    if isinstance(value, dict):
        for key, item in value.items():
            out.append(str(key))
            _walk(item, out)
    elif isinstance(value, list):
        for item in value:
            _walk(item, out)
    else:
        text = _scalar(value)
        if text is not None:
            out.append(text)


def event_search_text(event: dict) -> str:
    """The lower-cased full text of a wire event."""
    parts: list[str] = []
    for field in SEARCHED_FIELDS:
        value = event.get(field.name)
        if value is None:
            continue
        if field.kind == OBJECT:
            _walk(value, parts)
        elif field.kind == METADATA:
            parts.extend(text for text in map(_scalar, value.values()) if text is not None)
        elif field.kind == RULE:
            parts.extend(str(value[key]) for key in RULE_KEYS if value.get(key) is not None)
        else:
            parts.append(str(value))
    return SEPARATOR.join(part for part in parts if part).lower()
