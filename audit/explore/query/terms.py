"""Writing terms into a query's text: what a facet click or a suggestion adds or removes.

A value is written bare when the grammar reads it back unchanged, else in quotes
(quoted values are literal: no wildcard, no comma), so `term_text` always parses to a
term matching exactly that value.
"""

import re

from audit.explore.query.parser import QuerySyntaxError, query_parse

_BARE_RE = re.compile(r"^[^\s\",\\*]+$")


def value_text(value: str) -> str:
    if _BARE_RE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def term_text(qualifier: str, value: str) -> str:
    """`qualifier:value` (`metadata.<key>` qualifiers get their key quoted when needed)."""
    if qualifier.startswith("metadata."):
        qualifier = "metadata." + value_text(qualifier[len("metadata.") :]).replace(":", "\\:")
    return f"{qualifier}:{value_text(value)}"


def _spans(text: str) -> list[tuple[int, int]] | None:
    """(start, end) of each term, or None when the text does not parse."""
    try:
        return [(term.start, term.end) for term in query_parse(text).terms]
    except QuerySyntaxError:
        return None


def query_has(text: str, term: str) -> bool:
    spans = _spans(text or "")
    return bool(spans) and any(text[start:end] == term for start, end in spans)


def query_toggle(text: str, term: str) -> str:
    """`text` with `term` removed where it stands alone, else with `term` added at the end."""
    text = text or ""
    spans = _spans(text)
    if spans is None:
        return term  # a query that does not parse is replaced, not extended
    kept = [text[start:end] for start, end in spans if text[start:end] != term]
    if len(kept) == len(spans):
        kept.append(term)
    return " ".join(kept)
