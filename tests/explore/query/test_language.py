"""Every row of SPEC §7's table against the corpus (conftest.py), through the one FilterSet."""

import pytest
from django.http import QueryDict

from audit.explore import selectors
from audit.explore.filters import FilterError

ALL = {"c1", "c2", "c3", "c4", "c5"}


def matching(org, q, **more):
    params = QueryDict(mutable=True)
    params["q"] = q
    for name, value in more.items():
        params[name] = value
    return {event.event_id for event in selectors.event_list(org=org, filters=params)}


ROWS = [
    # field qualifiers: case-insensitive, * wildcards, comma for OR
    ("actor:alice@company.com", {"c1"}),
    ("actor:ALICE*", {"c1"}),
    ("Actor:*@company.com", {"c1", "c2", "c5"}),
    ("actor:bob@company.com,carol@company.com", {"c2", "c5"}),
    ("actor:ÉLODIE@SOCIÉTÉ.FR", {"c4"}),
    ("actor:*ÉTÉ*", {"c4"}),
    ("-actor:alice*", {"c2", "c3", "c4", "c5"}),  # anonymous calls are not alice
    ("slug:github-*", {"c1", "c5"}),
    ("slug:GITHUB-PROD", {"c1", "c5"}),
    ("tool:delete_*", {"c1"}),
    ("tool:delete", set()),  # exact unless a * says otherwise
    ("tool:*_*", {"c1", "c2", "c4", "c5"}),
    ("-tool:*_*", {"c3"}),
    ("tool:delete?repo", set()),  # ? is no wildcard
    ("tool:delete\\_repo", {"c1"}),  # an escaped character is itself
    ("method:tools/list", {"c3"}),
    ("method:TOOLS/*", ALL),
    ("decision:deny,alert", {"c1", "c3", "c4"}),
    ("decision:DENY", {"c1", "c4"}),
    ("-decision:allow", {"c1", "c3", "c4"}),
    ("outcome:*error", {"c3"}),
    ("trace:trace-a", {"c1", "c2"}),
    ('trace:"trace with space"', {"c5"}),
    ("trace:trace\\ with\\ space", {"c5"}),
    ("rule:r-del", {"c1"}),
    ("rule:R-*", {"c1", "c3", "c4"}),
    ("-rule:r-del", {"c2", "c3", "c4", "c5"}),  # no rule is not r-del
    ("policy:github-guardrails", {"c1"}),
    ("policy:*-*", {"c1", "c3", "c4"}),
    # metadata.<key>:<value>, typed as the structured filter
    ("metadata.env:production", {"c1", "c5"}),
    ("metadata.env:production,staging", {"c1", "c2", "c3", "c5"}),
    ("metadata.env:PRODUCTION", set()),  # metadata values are exact, as metadata.env=… is
    ("metadata.ticket:4711", {"c1"}),
    ("metadata.dry_run:true", {"c3"}),
    ('metadata."my key":"x,y"', {"c5"}),
    ("metadata.my\\ key:x\\,y", {"c5"}),
    ("-metadata.env:staging", {"c1", "c4", "c5"}),
    # comparisons
    ("status:>=500", {"c3"}),
    ("status:403", {"c1", "c4"}),
    ("status:=403", {"c1", "c4"}),
    ("status:<300", {"c2", "c5"}),
    ("status:200,502", {"c2", "c3", "c5"}),
    ("-status:>=400", {"c2", "c5"}),
    ("duration:>1000", {"c3", "c5"}),
    ("duration:<=3", {"c1", "c4"}),
    ("duration:>2.5 duration:<95", {"c1"}),
    # the time window
    ("since:1h", {"c1", "c3", "c5"}),
    ("until:1h", {"c2", "c4"}),
    ("since:1d -since:30m", {"c2"}),
    # presence
    ("no:actor", {"c3"}),
    ("has:actor", {"c1", "c2", "c4", "c5"}),
    ("-no:actor", {"c1", "c2", "c4", "c5"}),
    ("no:tool", {"c3"}),
    ("has:rule", {"c1", "c3", "c4"}),
    ("no:metadata", {"c4"}),
    ("has:metadata.dry_run", {"c3"}),
    ("no:metadata.env", {"c4"}),
    ("has:error", {"c1", "c3"}),
    ("no:arguments", {"c3"}),
    ("no:actor,tool", {"c3"}),
    ("has:status,error", {"c1", "c2", "c3", "c4", "c5"}),
    # full text: words and phrases, case-insensitive, over the whole event
    ("secret", {"c1", "c2"}),  # nested argument value; a longer word
    ("SECRET", {"c1", "c2"}),
    ('"secrets file"', {"c2"}),
    ("force", {"c1"}),  # a nested argument key
    ("42", {"c1"}),  # a nested number
    ("plaît", {"c2"}),
    ("vous PLAÎT", {"c2"}),
    ("über", {"c4"}),
    ("ÜNÏCÖDÉ", {"c4"}),
    ("staging", {"c2", "c3"}),  # metadata values
    ("dry_run", set()),  # metadata keys are not searched
    ("drive-dlp", {"c4"}),  # policy
    ("r-jira", {"c3"}),  # rule id
    ("trace-b", {"c3"}),  # trace id
    ("élodie", {"c4"}),  # actor
    ("bad gateway", {"c3"}),  # error, two words
    ('"bad gateway"', {"c3"}),
    ('"gateway bad"', set()),
    ('"acme/legacy options"', set()),  # a phrase never spans two values
    ("slack-prod", {"c2"}),  # slug
    ("delete_repo", {"c1"}),  # tool
    ('"quote \\" and back\\\\slash"', {"c3"}),
    ("50%", {"c3", "c5"}),  # LIKE's % and _ are plain text
    ("_under", {"c3"}),
    ('"a*b, c"', {"c5"}),  # quoted: * and , are plain
    ("a\\*b\\,", {"c5"}),
    ("done*ok", {"c5"}),  # a * in a word is a wildcard
    ("-secret", {"c3", "c4", "c5"}),
    ('-"bad gateway"', {"c1", "c2", "c4", "c5"}),
    # terms are ANDed
    ("decision:deny -metadata.env:staging secret", {"c1"}),
    ("  ", ALL),
    ("", ALL),
]


@pytest.mark.parametrize("q, expected", ROWS)
def test_every_row_of_the_table(corpus, org, q, expected):
    assert matching(org, q) == expected


def test_q_is_anded_with_the_structured_filters(corpus, org):
    assert matching(org, "secret", decision="deny") == {"c1"}
    assert matching(org, "actor:*@company.com", slug="github-prod") == {"c1", "c5"}
    assert matching(org, "-decision:deny", since="1h") == {"c3", "c5"}


def test_another_organization_never_matches(corpus, other_org):
    assert matching(other_org, "secret") == {"c1"}  # its own c1 only
    assert len(selectors.event_list(org=other_org, filters=QueryDict("q=tool:delete_*"))) == 1


@pytest.mark.parametrize(
    "q, message",
    [
        ("actor:", "position 7: expected a value"),
        ("actor: alice", "position 7: expected a value (no space after the colon), found a space"),
        ("actr:bob", "position 1: expected a qualifier (actor:, slug:,"),
        ("http://example.com", "position 1: expected a qualifier"),
        ('secret "unclosed', 'position 8: expected a closing " for the quote opened here'),
        ("- secret", 'position 2: expected a word, a "phrase" or a qualifier such as actor:, found a space'),
        ("actor:a,", "position 9: expected a value"),
        ('actor:a"b"', "position 8: expected"),
        ("status:>=abc", "position 8: expected a number"),
        ("duration:fast", "position 10: expected a number"),
        ("decision:maybe", "position 10: expected one of allow, deny, alert"),
        ("outcome:ok", "position 9: expected one of success, denied"),
        ("since:yesterday", "position 7: expected a time"),
        ("since:1h,2h", "position 10: expected one time"),
        ("no:colour", "position 4: expected one of actor, tool"),
        ("secret trailing\\", "position 16: expected a character after the backslash"),
        ("*", 'position 1: expected text to search'),
        ('""', "position 1: expected text to search"),
        ("metadata:x", "position 1: expected a qualifier"),
        ("tool.x:y", "position 1: expected a qualifier"),
        ("x " * 51, "position 101: expected at most 50 terms"),
        ("tool:x " * 50 + "-tool:y", "position 351: expected at most 50 terms"),
    ],
)
def test_a_query_that_does_not_parse_names_the_position(corpus, org, q, message):
    with pytest.raises(FilterError) as raised:
        matching(org, q)
    (problem,) = raised.value.errors["q"]
    assert problem.startswith(message), problem
