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


class QueryTerms:
    """The terms of a query's text as written, parsed once (a page toggles many terms)."""

    def __init__(self, text: str | None):
        self.text = text or ""
        try:
            self.terms = [self.text[term.start : term.end] for term in query_parse(self.text).terms]
        except QuerySyntaxError:
            self.terms = None  # a query that does not parse is replaced, not extended

    def has(self, term: str) -> bool:
        return bool(self.terms) and term in self.terms

    def toggle(self, term: str) -> str:
        """The text with `term` removed where it stands alone, else with `term` added at the end."""
        if self.terms is None:
            return term
        kept = [written for written in self.terms if written != term]
        if len(kept) == len(self.terms):
            kept.append(term)
        return " ".join(kept)
