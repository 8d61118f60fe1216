import re
from datetime import timedelta

import pytest
from django.urls import reverse

from audit.accounts.models import AccessRecord
from tests.factories import BASE_TIME, store_events, wire_event

HOSTILE = "<script>window.__lensPwned=1</script>"


def _at(ms):
    return (BASE_TIME + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ids(response):
    return re.findall(r'<tr class="[^"]*" data-event-id="([^"]+)"', response.content.decode())


# --- access -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/events/", "/events/evt-x/", "/traces/", "/traces/trace-x/"])
def test_pages_need_a_login(client, db, path):
    response = client.get(path + "?actor=a")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_home_needs_a_login_and_login_lands_on_events(client, viewer):
    assert client.get("/")["Location"].startswith(reverse("login") + "?next=/")
    page = client.get("/login/")
    assert page.status_code == 200 and b'name="username"' in page.content
    response = client.post("/login/", {"username": "viewer", "password": "viewer-pass-123"})
    assert response["Location"] == "/events/"
    assert client.get("/events/").status_code == 200


def test_logout_is_a_post(user_client):
    assert user_client.get("/logout/").status_code == 405
    response = user_client.post("/logout/")
    assert response["Location"] == reverse("login")
    assert user_client.get("/events/").status_code == 302


def test_a_login_without_an_organization_sees_nothing(client, db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("loner", password="loner-pass-123")
    client.force_login(user)
    assert client.get("/events/").status_code == 404


def test_another_organizations_event_and_trace_are_not_found(user_client, other_org):
    store_events(other_org, wire_event(id="globex-1", trace_id="trace-globex"))
    assert user_client.get("/events/globex-1/").status_code == 404
    assert user_client.get("/traces/trace-globex/").status_code == 404
    assert user_client.get("/events/nope/").status_code == 404


def test_pages_show_only_this_organization(user_client, org, other_org):
    store_events(org, wire_event(id="mine", actor="alice@company.com"))
    store_events(other_org, wire_event(id="theirs", actor="mallory@globex.com"))
    events = user_client.get("/events/")
    assert _ids(events) == ["mine"]
    assert b"mallory" not in events.content
    assert b"Acme" in events.content  # the organization's name
    traces = user_client.get("/traces/").content.decode()
    assert "mallory" not in traces and 'data-trace-id="' in traces


# --- the list -----------------------------------------------------------------------------

@pytest.fixture
def mixed(org):
    return store_events(
        org,
        wire_event(id="a1", actor="alice@company.com", timestamp=_at(1000), metadata={"env": "production", "team": "data"}),
        wire_event(id="b1", actor="bob@company.com", timestamp=_at(2000), decision="deny", outcome="denied",
                   status_code=403, metadata={"env": "staging"}),
        wire_event(id="b2", actor="bob@company.com", timestamp=_at(3000), decision="alert", slug="slack-prod",
                   tool="post_message", metadata={"env": "production"}),
        wire_event(id="c1", actor="carol@company.com", timestamp=_at(4000), metadata={"env": "production", "team": "growth"}),
    )


def test_list_is_newest_first_and_rows_link_to_event_and_trace(user_client, mixed):
    response = user_client.get("/events/")
    assert _ids(response) == ["c1", "b2", "b1", "a1"]
    html = response.content.decode()
    assert 'href="/events/b1/"' in html and f'href="/traces/{mixed[1].trace_id}/"' in html
    assert re.search(r'<tr class="d-deny" data-event-id="b1"', html)
    assert re.search(r'<tr class="d-alert" data-event-id="b2"', html)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor=bob%40company.com", ["b2", "b1"]),
        ("decision=deny&decision=alert", ["b2", "b1"]),
        ("metadata.env=production", ["c1", "b2", "a1"]),
        ("metadata.env=production&metadata.team=data", ["a1"]),
        ("slug=slack-prod", ["b2"]),
        ("q=carol", ["c1"]),
    ],
)
def test_list_filters_use_the_shared_filterset(user_client, mixed, query, expected):
    response = user_client.get("/events/?" + query)
    assert response.status_code == 200
    assert _ids(response) == expected


def test_an_invalid_filter_is_a_visible_error_not_ignored(user_client, mixed):
    response = user_client.get("/events/?decision=maybe&since=yesterday-ish")
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="filter-errors"' in html and 'class="field-error"' in html
    assert _ids(response) == []
    assert "Export these" not in html  # never offer an export of a filter that did not apply


def test_a_form_submission_is_redirected_to_its_canonical_url(user_client, mixed):
    response = user_client.get("/events/?q=&actor=bob%40company.com&actor=&tool=&meta_key=env&meta_value=production&since=")
    assert response.status_code == 302
    assert response["Location"] == "/events/?actor=bob%40company.com&metadata.env=production"
    assert _ids(user_client.get(response["Location"])) == ["b2"]


def test_the_apis_metadata_pairs_read_as_metadata_filters_in_the_page_url(user_client, mixed):
    response = user_client.get("/events/?metadata=env%3Dproduction&actor=bob%40company.com")
    assert response.status_code == 302
    assert response["Location"] == "/events/?actor=bob%40company.com&metadata.env=production"
    html = user_client.get("/events/?metadata=no-pair").content.decode()
    assert "is not &lt;key&gt;=&lt;value&gt;" in html


def test_facets_count_the_current_filter_and_add_a_query_term_on_click(user_client, mixed):
    html = user_client.get("/events/?metadata.env=production").content.decode()
    facets = html[html.index('class="facets"'):html.index('class="table-wrap"')]
    # decision: allow 2, alert 1 (b1 is staging, so deny is absent)
    assert re.search(r'href="\?metadata.env=production&amp;q=decision%3Aallow"[^>]*>.*?<span class="count">2</span>', facets, re.S)
    assert re.search(r'href="\?metadata.env=production&amp;q=decision%3Aalert"[^>]*>.*?<span class="count">1</span>', facets, re.S)
    assert "decision%3Adeny" not in facets
    assert 'href="?metadata.env=production&amp;q=actor%3Abob%40company.com"' in facets
    for facet in ("Outcome", "Tool", "Method", "metadata.env"):  # the most common key is counted
        assert f"<h2>{facet}</h2>" in facets
    # A click on a term already in the query removes it; the other terms stay.
    html = user_client.get("/events/?q=decision%3Aallow+-actor%3Acarol*").content.decode()
    facets = html[html.index('class="facets"'):html.index('class="table-wrap"')]
    assert 'href="?q=-actor%3Acarol%2A" aria-current="true"' in facets
    assert 'href="?q=decision%3Aallow+-actor%3Acarol%2A+slug%3Agithub-prod"' in facets
    # Another metadata key is one click away, and stays chosen.
    html = user_client.get("/events/?facet=team").content.decode()
    assert "<h2>metadata.team</h2>" in html and 'href="?q=metadata.team%3Adata&amp;facet=team"' in html


def test_the_default_metadata_facet_comes_after_the_page(user_client, mixed):
    """Counted over every matching event, the most common key's facet is not counted in the page:
    the page says where to fetch it (static/js/search.js does), and links to counting it inline."""
    html = user_client.get("/events/?metadata.env=production").content.decode()
    facets = html[html.index('class="facets"'):html.index('class="table-wrap"')]
    assert 'data-lens-facet="/facets/metadata/?metadata.env=production&amp;facet=env"' in facets
    assert 'href="?metadata.env=production&amp;facet=env">Count by metadata.env</a>' in facets
    fragment = user_client.get("/facets/metadata/?metadata.env=production&facet=env")
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert text.startswith('<div class="facet">') and "<h2>metadata.env</h2>" in text
    # Its clicks write the same query terms as the page's own facets.
    assert re.search(r'href="\?metadata.env=production&amp;q=metadata.env%3Aproduction"[^>]*>.*?'
                     r'<span class="count">3</span>', text, re.S)
    assert AccessRecord.objects.filter(action="stats-top", path="/facets/metadata/", filters__has_key="metadata.env").exists()


@pytest.mark.parametrize("url,problem", [
    ("/facets/metadata/", "facet: name a metadata key"),
    ("/facets/metadata/?facet=env&decison=deny", "decison: is not a filter"),
    ("/facets/metadata/?facet=env&since=yesterday-ish", "since:"),
    ("/facets/metadata/?facet=a%00b", "by:"),
])
def test_a_bad_facet_request_is_a_400_that_says_why(user_client, mixed, url, problem):
    response = user_client.get(url)
    assert response.status_code == 400 and problem in response.content.decode()


@pytest.mark.parametrize("key", ["a%01b", "a%00b", "%3Cenv%3E"])
def test_a_facet_key_the_filters_cannot_name_is_a_400_on_the_page(user_client, mixed, key):
    response = user_client.get(f"/events/?facet={key}")
    html = response.content.decode()
    assert response.status_code == 400 and '<span class="mono">facet</span>: ' in html


def test_a_stored_metadata_key_the_filters_cannot_name_gets_no_facet(user_client, org):
    store_events(org, wire_event(id="odd", metadata={"<env>": "x"}))
    response = user_client.get("/events/")
    assert response.status_code == 200 and "data-lens-facet=" not in response.content.decode()
    assert '<datalist id="dl-meta-keys"></datalist>' in response.content.decode()  # nor suggested as a key


@pytest.mark.parametrize("query", ["actor=%00", "q=%00", "q=(((((", "since=99999999999999999", "until=-1d",
                                   "metadata.%00=1", "q=metadata.env:" + "x" * 5000])
def test_hostile_facet_requests_are_answered_never_a_500(user_client, mixed, query):
    response = user_client.get(f"/facets/metadata/?facet=env&{query}")
    assert response.status_code in (200, 400), response.status_code


def test_export_links_carry_the_same_filters(user_client, mixed):
    html = user_client.get("/events/?actor=bob%40company.com&metadata.env=production").content.decode()
    for fmt in ("csv", "ndjson"):
        assert f'href="/api/v1/audit-events/export?format={fmt}&amp;actor=bob%40company.com&amp;metadata.env=production"' in html


def test_the_filter_panel_suggests_what_the_organization_sent(user_client, mixed):
    html = user_client.get("/events/").content.decode()
    assert '<datalist id="dl-meta-keys"><option value="env"></option><option value="team"></option></datalist>' in html
    assert 'data-lens-meta-values-for="team"><option value="data"></option><option value="growth"></option>' in html
    assert '<option value="bob@company.com"></option>' in html


def test_keyset_pages_walk_older_and_back_newer_without_overlap(user_client, org, settings):
    from audit.web import views

    store_events(org, *[wire_event(id=f"e{n:03d}", timestamp=_at(n * 10)) for n in range(views.PAGE_SIZE * 2 + 5)])
    first = user_client.get("/events/")
    older = re.search(r'href="(\?cursor=[^"]+)" rel="next"', first.content.decode()).group(1).replace("&amp;", "&")
    second = user_client.get("/events/" + older)
    assert len(_ids(first)) == len(_ids(second)) == views.PAGE_SIZE
    assert not set(_ids(first)) & set(_ids(second))
    assert _ids(first)[-1] > _ids(second)[0]
    newer = re.search(r'href="(\?cursor=[^"]+)" rel="prev"', second.content.decode()).group(1).replace("&amp;", "&")
    assert _ids(user_client.get("/events/" + newer)) == _ids(first)


# --- one event ------------------------------------------------------------------------------

def test_event_page_explains_the_decision(user_client, org):
    store_events(
        org,
        wire_event(id="denied", tool="delete_repo", decision="deny", outcome="denied", status_code=403, error="denied by policy",
                   rule={"id": "r-del", "policy": "github-guardrails", "index": 2, "tool": "delete_*", "action": "deny",
                         "conditions": {"user": {"not_in": ["admin@company.com"]}}},
                   reason="rule r-del matched", arguments={"repo": "acme/legacy", "note": "x" * 500}),
        wire_event(id="default", decision="deny", outcome="denied", rule=None, reason="no rule matched: denied by default"),
    )
    html = user_client.get("/events/denied/").content.decode()
    for expected in ("r-del", "github-guardrails", "index 2", "delete_*", "not_in", "rule r-del matched", "403", "denied by policy"):
        assert expected in html, expected
    assert '<details class="fold">' in html  # the 500-character note is folded
    assert 'href="/events/?actor=alice%40company.com"' in html
    assert 'href="/events/?tool=delete_repo"' in html
    assert 'href="/events/?metadata.env=production"' in html
    html = user_client.get("/events/default/").content.decode()
    assert "<strong>No rule matched</strong>" in html and "no rule matched: denied by default" in html


def test_hostile_content_is_escaped_everywhere(user_client, org):
    store_events(org, wire_event(id="evil", actor=HOSTILE, trace_id="trace-evil", tool="create_issue",
                                 arguments={HOSTILE: HOSTILE}, metadata={"note": HOSTILE}, error=HOSTILE, reason=HOSTILE))
    for path in ("/events/", "/events/evil/", "/traces/", "/traces/trace-evil/", "/events/?q=" + HOSTILE):
        response = user_client.get(path, follow=True)
        html = response.content.decode()
        assert "<script>window" not in html, path
        assert "&lt;script&gt;window.__lensPwned=1&lt;/script&gt;" in html, path


def test_pages_carry_the_csp_and_no_inline_style_or_script(user_client, mixed):
    for path in ("/events/", "/events/b1/", "/traces/", f"/traces/{mixed[1].trace_id}/", "/login/"):
        response = user_client.get(path)
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert "style-src 'self'" in response["Content-Security-Policy"]
        html = response.content.decode()
        assert not re.search(r"\sstyle\s*=", html), path
        assert not re.search(r"<style", html), path
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", html) == [], path
        assert not re.search(r"\son[a-z]+\s*=", html), path


# --- the chain --------------------------------------------------------------------------------

def test_chain_draws_calls_in_order_at_their_offsets(user_client, org):
    store_events(
        org,
        wire_event(id="c3", trace_id="t", timestamp=_at(900), slug="slack-prod", duration_ms=100, decision="deny", outcome="denied"),
        wire_event(id="c1", trace_id="t", timestamp=_at(0), duration_ms=200),
        wire_event(id="c2", trace_id="t", timestamp=_at(300), duration_ms=100, decision="alert"),
    )
    html = user_client.get("/traces/t/").content.decode()
    assert re.findall(r'data-event-id="([^"]+)"', html) == ["c1", "c2", "c3"]
    bars = re.findall(r'<rect class="bar c(\d)" x="([\d.]+)" y="4" width="([\d.]+)"', html)
    assert bars == [("0", "0.00", "200.00"), ("0", "300.00", "100.00"), ("1", "900.00", "100.00")]
    assert html.count('class="mark-deny"') == 1 and html.count('class="mark-alert"') == 1
    assert "1 denied" in html and "1 alert" in html


# --- query counts -----------------------------------------------------------------------------

@pytest.mark.parametrize("rows", [5, 50])
def test_list_page_queries_do_not_grow_with_rows(user_client, org, rows, django_assert_num_queries):
    store_events(org, *[wire_event(trace_id=f"t-{n % 7}", actor=f"user{n % 9}@x.com", metadata={"k": str(n)}) for n in range(rows)])
    # session, user, membership+org, suggestions, page, facets, access record, saved views (the
    # default metadata key's facet is fetched by the page afterwards)
    with django_assert_num_queries(8):
        assert user_client.get("/events/?metadata.k=1").status_code == 200
    with django_assert_num_queries(7):  # suggestions now cached
        assert user_client.get("/events/").status_code == 200
    # session, user, membership+org, the key's counts, access record
    with django_assert_num_queries(5):
        assert user_client.get("/facets/metadata/?metadata.k=1&facet=k").status_code == 200
    with django_assert_num_queries(8):  # a query, a chosen metadata facet key: still one page, two facet reads
        assert user_client.get("/events/?q=user1*+-no:actor+metadata.k:1&facet=k").status_code == 200
    # session, user, membership+org, one page of trace summaries, access record, saved views
    with django_assert_num_queries(6):
        assert user_client.get("/traces/?metadata.k=1&q=-decision:deny").status_code == 200


@pytest.mark.parametrize("rows", [5, 50])
def test_event_and_chain_pages_queries_do_not_grow_with_rows(user_client, org, rows, django_assert_num_queries):
    store_events(org, *[wire_event(id=f"r{n}", trace_id="big", timestamp=_at(n * 50), slug=f"conn-{n % 4:03d}") for n in range(rows)])
    with django_assert_num_queries(6):  # session, user, membership+org, event, access record, chain status
        assert user_client.get("/events/r1/").status_code == 200
    with django_assert_num_queries(7):  # session, user, membership+org, summary, events, access record, chain status
        response = user_client.get("/traces/big/")
    assert response.content.decode().count("<details class=\"tl-call") == rows


def test_every_bad_parameter_is_reported_at_once(user_client, mixed):
    html = user_client.get("/events/?since=yesterday&decision=nope&meta_key=env").content.decode()
    banner = html[html.index('id="filter-errors"'):]
    for name in ("since", "decision", "metadata"):
        assert f'<span class="mono">{name}</span>' in banner, name
    assert "give a value for metadata key" in banner


def test_any_trace_id_gets_a_working_link(user_client, org):
    odd = "run/42?x=1#frag ü"
    store_events(org, wire_event(id="odd", trace_id=odd))
    html = user_client.get("/events/").content.decode()
    href = re.search(r'href="(/traces/[^"]+)" title="Open trace', html).group(1)
    assert href == "/traces/run%2F42%3Fx%3D1%23frag%20%C3%BC/"  # one path segment, whatever the id holds
    page = user_client.get(href)
    assert page.status_code == 200 and 'data-event-id="odd"' in page.content.decode()


def test_a_tampered_page_link_is_an_error_not_a_silent_first_page(user_client, mixed):
    response = user_client.get("/events/?cursor=not-a-cursor")
    assert response.status_code == 400
    assert "is not a cursor Lens gave out" in response.content.decode()


def test_page_reads_are_recorded_in_the_access_log(user_client, org):
    from audit.models import AccessRecord

    store_events(org, wire_event(id="seen", trace_id="t-seen"))
    for url in ("/events/?decision=allow", "/events/seen/", "/traces/", "/traces/t-seen/"):
        assert user_client.get(url).status_code == 200
    records = list(AccessRecord.objects.filter(org=org).order_by("id").values_list("action", "target", "path", "filters"))
    assert records == [
        ("event-list", "", "/events/", {"decision": ["allow"]}),
        ("event-view", "seen", "/events/seen/", {}),
        ("trace-list", "", "/traces/", {}),
        ("trace-view", "t-seen", "/traces/t-seen/", {}),
    ]


def test_facets_count_every_match_exactly(user_client, org):
    store_events(org, *[wire_event(decision="deny") for _ in range(3)])
    html = user_client.get("/events/").content.decode()
    assert "Counts cover the newest" not in html
    facet = html[html.index('aria-label="Counts for this filter"'):]
    assert '<span class="count">3</span>' in facet


@pytest.mark.parametrize("url", ["/events/?decison=deny", "/traces/?acter=bob"])
def test_an_unknown_parameter_is_a_visible_error_not_ignored(user_client, mixed, url):
    response = user_client.get(url)
    assert response.status_code == 400
    html = response.content.decode()
    name = url.split("?")[1].split("=")[0]
    banner = html[html.index('id="filter-errors"'):]
    assert f'<span class="mono">{name}</span>: is not a filter' in banner


# --- a trace's chain stays a bounded page --------------------------------------------------------


def test_a_long_trace_is_drawn_a_page_at_a_time(user_client, org):
    store_events(org, *(wire_event(id=f"c{n:03d}", trace_id="long", timestamp=_at(n)) for n in range(230)))
    first = user_client.get("/traces/long/").content.decode()
    assert first.count('<details class="tl-call') == 200 and "calls 1–200 are drawn" in first
    more = re.search(r'href="(\?cursor=[^"]+)" rel="next"', first).group(1)
    rest = user_client.get("/traces/long/" + more.replace("&amp;", "&")).content.decode()
    assert rest.count('<details class="tl-call') == 30 and 'data-event-id="c229"' in rest and 'data-event-id="c199"' not in rest
    assert '<span class="tl-pos">201</span>' in rest and "From the first call" in rest
    assert user_client.get("/traces/long/?cursor=made-up").status_code == 400


def test_large_values_are_shortened_in_the_chain_with_a_link_to_the_full_event(user_client, org):
    blob = "y" * 50_000 + "THE-END"
    store_events(org, wire_event(id="big", trace_id="heavy", arguments={"blob": blob}, error="e" * 20_000))
    chain = user_client.get("/traces/heavy/").content.decode()
    assert "THE-END" not in chain and len(chain) < 40_000
    assert 'href="/events/big/">Open the full event' in chain
    assert "THE-END" in user_client.get("/events/big/").content.decode()


# --- text that hides or reorders itself --------------------------------------------------------


SPOOF = "admin\u202e@moc.evil"


def test_identities_are_isolated_and_hidden_characters_shown(user_client, org):
    store_events(org, wire_event(id="spoof", actor=SPOOF, tool="list\u200bissues", slug="github-prod",
                                 trace_id="t\u2066x", arguments={"to\u202e": "pay\u200dme"},
                                 metadata={"env": "prod\ufeff"}))
    mark = '<span class="hidden-char" title="U+202E right-to-left override">U+202E</span>'
    for path in ("/events/spoof/", "/events/", "/traces/", "/traces/t%E2%81%A6x/"):
        page = user_client.get(path).content.decode()
        assert f"<bdi>admin{mark}@moc.evil</bdi>" in page, path
    detail = user_client.get("/events/spoof/").content.decode()
    for code in ("U+200B", "U+2066", "U+200D", "U+FEFF"):
        assert f">{code}</span>" in detail, code
    assert "\u202e@moc" not in detail.split("<datalist")[0].split("<title>")[1]  # never raw on the page itself
