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
