"""The events page's search: facets whose clicks write query terms, the syntax card,
and what the search box's autocomplete offers (read from the page by static/js/lens.js)."""

from django.http import QueryDict

from audit.explore.pagination import CURSOR_PARAM
from audit.explore.query.terms import QueryTerms, term_text
from audit.explore.vocabulary import (
    FACETS, METADATA_MATCH, METADATA_PREFIX, PRESENCE_FIELDS, QUALIFIER_BY_PARAM, QUALIFIERS,
)

FACET_KEY_PARAM = "facet"  # which metadata key the metadata facet counts (not a filter)
FACET_KEY_CHOICES = 6


def _href(params: QueryDict, *, q: str, facet_key: str | None) -> str:
    query = params.copy()
    query.pop(CURSOR_PARAM, None)
    if q:
        query["q"] = q
    else:
        query.pop("q", None)
    if facet_key:
        query[FACET_KEY_PARAM] = facet_key
    return "?" + query.urlencode() if query else "./"


def _facet(*, param, label, qualifier, items, params, query: QueryTerms, chosen_key) -> dict:
    top = max((count for _, count in items), default=0) or 1
    current = params.getlist(param)
    rows = []
    for value, count in items:
        term = term_text(qualifier, value) if value is not None else term_text("no", qualifier)
        in_query = query.has(term)
        rows.append({
            "value": value, "count": count, "share": 100.0 * count / top, "term": term, "in_query": in_query,
            "active": in_query or (value is not None and value in current),
            "href": _href(params, q=query.toggle(term), facet_key=chosen_key),
        })
    return {"param": param, "label": label, "items": rows}


def facets_build(*, counts: dict, params: QueryDict, chosen_key: str | None) -> list[dict]:
    """The facets of the events page; a click adds the value's term to `q` (or removes it)."""
    query = QueryTerms(params.get("q"))
    return [
        _facet(param=term.name, label=term.label, qualifier=QUALIFIER_BY_PARAM[term.name].name,
               items=counts.get(term.name, []), params=params, query=query, chosen_key=chosen_key)
        for term in FACETS
    ]


def metadata_facet_build(*, items: list, params: QueryDict, metadata_key: str, chosen_key: str | None,
                         metadata_keys: list[str]) -> dict:
    """The facet of one metadata key, with the other keys one click away."""
    name = METADATA_PREFIX + metadata_key
    facet = _facet(param=name, label=name, qualifier=name, items=items, params=params,
                   query=QueryTerms(params.get("q")), chosen_key=chosen_key)
    facet["key_choices"] = [  # not "keys": a template would read a dict's keys() method
        {"key": key, "href": _href(params, q=params.get("q", ""), facet_key=key), "active": key == metadata_key}
        for key in metadata_keys[:FACET_KEY_CHOICES]
    ]
    return facet


def metadata_facet_later(*, params: QueryDict, metadata_key: str) -> dict:
    """Where the page fetches the default key's facet from after it is shown (static/js/search.js):
    counted over every matching event, it would hold up the page at millions of events. Without
    script, its link counts it in the page."""
    query = params.copy()
    query.pop(CURSOR_PARAM, None)
    query[FACET_KEY_PARAM] = metadata_key
    return {"label": METADATA_PREFIX + metadata_key, "query": query.urlencode(),
            "href": _href(params, q=params.get("q", ""), facet_key=metadata_key)}


def syntax_card() -> dict:
    """What the syntax card lists, and the autocomplete reads from it."""
    return {
        "qualifiers": [
            {"name": "metadata.<key>" if q.kind == METADATA_MATCH else q.name, "insert": "metadata." if q.kind ==
             METADATA_MATCH else f"{q.name}:", "help": q.help, "example": q.example, "values_for": q.param or ""}
            for q in QUALIFIERS
        ],
        "presence_fields": list(PRESENCE_FIELDS),
    }
