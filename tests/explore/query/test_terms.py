"""Terms written by facet clicks and suggestions parse back to exactly their value."""

import pytest

from audit.explore.query import query_parse
from audit.explore.query.nodes import Match, MetadataMatch
from audit.explore.query.terms import QueryTerms, term_text


@pytest.mark.parametrize("value", ["alice@company.com", "Jane Doe", "a,b", 'say "hi"', "back\\slash", "x*y", "-dash", "ünï"])
def test_a_written_term_reads_back_as_its_value(value):
    (term,) = query_parse(term_text("actor", value)).terms
    assert isinstance(term, Match) and not term.patterns[0].wildcard and term.patterns[0].text == value


@pytest.mark.parametrize("key", ["env", "my key", "a:b", 'q"uote'])
def test_a_metadata_term_reads_back_as_its_key_and_value(key):
    (term,) = query_parse(term_text(f"metadata.{key}", "x, y")).terms
    assert isinstance(term, MetadataMatch) and term.key == key and term.values == ("x, y",)


def test_toggle_adds_a_missing_term_and_removes_a_present_one():
    terms = QueryTerms('tool:x  "a phrase" -decision:allow')
    assert terms.has("-decision:allow") and not terms.has("decision:allow")
    assert terms.toggle("decision:deny") == 'tool:x "a phrase" -decision:allow decision:deny'
    assert terms.toggle('"a phrase"') == "tool:x -decision:allow"
    assert QueryTerms("").toggle("no:actor") == "no:actor"
    assert QueryTerms("actor:").toggle("no:actor") == "no:actor"  # a broken query is replaced
