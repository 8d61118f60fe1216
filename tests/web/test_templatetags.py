from audit.templatetags.lens import FOLD_AT, href_set, href_without, json_tree
from django.http import QueryDict


def test_json_tree_escapes_every_key_and_value():
    html = json_tree({"<b>key</b>": "<script>alert(1)</script>", "list": ["<img src=x onerror=alert(1)>"]})
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;key&lt;/b&gt;" in html


def test_json_tree_folds_long_strings_and_keeps_them_whole():
    long = "x" * (FOLD_AT + 1) + "<end>"
    html = json_tree({"body": long, "short": "ok"})
    assert html.count('<details class="fold">') == 1
    assert ("x" * (FOLD_AT + 1) + "&lt;end&gt;") in html
    assert f"({len(long)} chars)" in html


def test_json_tree_renders_scalars_as_json():
    html = json_tree({"n": 1.5, "t": True, "none": None})
    assert '<span class="j-num">1.5</span>' in html
    assert '<span class="j-bool">true</span>' in html
    assert '<span class="j-null">null</span>' in html


def test_filter_links_keep_the_filter_and_drop_the_page_cursor():
    params = QueryDict("actor=a&actor=b&cursor=abc&metadata.env=prod")
    assert QueryDict(href_set(params, "decision", "deny")[1:]) == QueryDict("actor=a&actor=b&metadata.env=prod&decision=deny")
    assert QueryDict(href_without(params, "actor", "a")[1:]) == QueryDict("actor=b&metadata.env=prod")
    assert QueryDict(href_without(params, "metadata.env")[1:]) == QueryDict("actor=a&actor=b")
    assert href_without(QueryDict("actor=a"), "actor", "a") == "./"


def test_reveal_isolates_and_marks_every_hidden_character():
    from audit.templatetags.lens import reveal, reveal_text

    assert reveal("alice") == "<bdi>alice</bdi>" and reveal(None) == ""
    html = reveal("a\u202eb\u200bc\x85d\u2028e\u3164f<g>")
    for code in ("U+202E", "U+200B", "U+0085", "U+2028", "U+3164"):
        assert f">{code}</span>" in html
    assert "&lt;g&gt;" in html and "\u202e" not in html
    assert reveal_text("a\u202eb") == "a[U+202E]b"


def test_json_tree_marks_hidden_characters_in_keys_and_values():
    html = json_tree({"k\u202e": "v\u200b"})
    assert ">U+202E</span>" in html and ">U+200B</span>" in html and "\u202e" not in html


def test_json_tree_with_a_limit_draws_about_that_much_and_links_to_the_rest():
    value = {"blob": "z" * 10_000, "list": list(range(1000)), "after": "never drawn"}
    html = json_tree(value, limit=500, full_url="/events/e1/")
    assert html.count("z") < 600 and "never drawn" not in html and "more</span>" in html
    assert 'href="/events/e1/">Open the full event' in html
    assert "Open the full event" not in json_tree({"small": 1}, limit=500, full_url="/events/e1/")


HOSTILE = '"><img src=x onerror=alert(1)>'


def test_an_event_row_escapes_every_cell_and_marks_hidden_characters():
    from datetime import UTC, datetime

    from audit.events.models import AuditEvent
    from audit.templatetags.lens import event_row

    event = AuditEvent(
        event_id="e" + HOSTILE, timestamp=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC), tool="", method="m" + HOSTILE,
        actor="admin\u202e@moc.evil", slug="s" + HOSTILE, decision="deny", outcome="denied", status_code=403,
        duration_ms=12.5, trace_id="../t" + HOSTILE,
    )
    html = event_row(event)
    assert "<img" not in html
    assert html.count("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;") == 7  # id (2), call, slug, trace (3)
    assert 'class="d-deny"' in html and '<span class="badge o-bad show-sm">denied</span>' in html
    assert "title=\"e&quot;&gt;&lt;img src=x onerror=alert(1)&gt; · 2026-01-02 03:04:05.678 UTC\"" in html
    assert '<span class="hidden-char" title="U+202E right-to-left override">U+202E</span>' in html
    assert 'title="admin[U+202E]@moc.evil"' in html
    assert 'href="/traces/..%2Ft%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/"' in html
    assert ' <span class="muted small">403</span>' in html and ">12 ms<" in html


def test_an_anonymous_event_row_says_so():
    from datetime import UTC, datetime

    from audit.events.models import AuditEvent
    from audit.templatetags.lens import event_row

    event = AuditEvent(event_id="e1", timestamp=datetime(2026, 1, 2, tzinfo=UTC), tool="list", method="tools/call",
                       actor="", slug="gh", decision="allow", outcome="success", trace_id="t1")
    html = event_row(event)
    assert '<span class="muted">anonymous</span>' in html and 'title="anonymous"' in html
    assert html.count("o-success") == 2 and "o-bad" not in html and '<span class="muted small">' not in html


def test_a_trace_row_escapes_every_cell_and_counts_what_it_holds():
    from datetime import UTC, datetime

    from audit.ingest.models import TraceSummary
    from audit.templatetags.lens import trace_row

    trace = TraceSummary(trace_id="t" + HOSTILE, started_at=datetime(2026, 1, 2, tzinfo=UTC), calls=1,
                         total_duration_ms=5.0, actors=["", "a" + HOSTILE], slugs=["s\u200b"], deny_count=2, alert_count=0)
    trace.span_ms = 0.0
    html = trace_row(trace)
    assert "<img" not in html
    assert 'class="d-deny"' in html and '<span class="count-pill deny">2</span>' in html
    assert '<span class="muted">0</span>' in html  # no alerts
    assert '<span class="muted">—</span>' in html  # one call: no span
    assert '<span class="cell-clip"><span class="muted">anonymous</span></span>' in html
    assert ">U+200B</span>" in html
