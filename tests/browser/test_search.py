"""The search box in a real Chromium: autocomplete, a typed query, facet clicks that write
terms into it, the syntax card, a positioned error, saving the view; desktop and phone."""

import pytest

from tests.browser.conftest import ARTIFACTS, login
from tests.browser.test_explorer import _rows, world  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser]


def _ids(page):
    return sorted(_rows(page).evaluate_all("rows => rows.map(r => r.dataset.eventId)"))


def test_type_a_query_with_autocomplete_then_narrow_it_with_a_facet(page, world):  # noqa: F811
    login(page)
    box = page.get_by_role("combobox", name="Search")
    box.click()
    # A qualifier is offered as its name is typed, and completed with Enter.
    box.press_sequentially("too")
    suggestions = page.locator("#f-q-suggest [role=option]")
    assert suggestions.first.inner_text().startswith("tool:")
    page.screenshot(path=ARTIFACTS / "search-autocomplete-qualifier.png")
    box.press("ArrowDown")
    box.press("Enter")
    assert box.input_value() == "tool:"
    # Then the tools this organization has sent, narrowed by what is typed.
    box.press_sequentially("run")
    assert suggestions.all_inner_texts() == ["tool:run_query"]
    box.press("ArrowDown")
    box.press("Enter")
    assert box.input_value() == "tool:run_query "
    box.press_sequentially('-metadata.env:staging "count(*)"')
    box.press("Enter")
    page.wait_for_url("**/events/?q=tool%3Arun_query+-metadata.env%3Astaging+%22count%28*%29%22")
    assert _ids(page) == []  # bob's queries all ran on staging
    box = page.get_by_role("combobox", name="Search")
    box.fill('"select count" actor:bob*')
    box.press("Enter")
    page.wait_for_url("**/events/?q=%22select+count%22+actor%3Abob*")
    assert _ids(page) == ["bob-0", "bob-1", "bob-2", "bob-3"]

    # A facet click adds its term to the query; the URL holds it, so it can be shared.
    # The metadata facet counts the most common key (feature), fetched after the page is shown;
    # its keys are one click away.
    fetched = page.locator(".facet", has=page.get_by_role("heading", name="metadata.feature"))
    assert fetched.locator(".count").first.inner_text().isdigit()
    assert page.locator("[data-lens-facet]").count() == 0
    page.locator(".facet-keys a", has_text="env").click()
    page.wait_for_url("**/events/?q=%22select+count%22+actor%3Abob%2A&facet=env")
    page.locator(".facet a[title='Add metadata.env:staging']").click()
    page.wait_for_url("**/events/?q=%22select+count%22+actor%3Abob%2A+metadata.env%3Astaging&facet=env")
    assert page.get_by_role("combobox", name="Search").input_value() == '"select count" actor:bob* metadata.env:staging'
    assert _ids(page) == ["bob-0", "bob-1", "bob-2", "bob-3"]
    # A second click on the same value removes its term again.
    page.locator(".facet a[title='Remove metadata.env:staging']").click()
    page.wait_for_url("**/events/?q=%22select+count%22+actor%3Abob%2A&facet=env")
    page.screenshot(path=ARTIFACTS / "search-query.png", full_page=True)
    assert page.lens_problems == []


def test_the_syntax_card_a_positioned_error_and_saving_a_view(page, world):  # noqa: F811
    login(page)
    page.get_by_text("Search syntax").click()
    card = page.locator(".query-help")
    assert "tool:delete_*" in card.inner_text() and "no:actor" in card.inner_text()
    page.screenshot(path=ARTIFACTS / "search-syntax-card.png", full_page=True)

    box = page.get_by_role("combobox", name="Search")
    box.fill("status:>=lots")
    box.press("Enter")
    assert page.locator("#q-error").inner_text().startswith("position 8: expected a number")
    assert box.input_value() == "status:>=lots"
    page.screenshot(path=ARTIFACTS / "search-error.png", full_page=True)
    assert page.lens_problems == ["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    page.lens_problems.clear()  # the page of a bad query is answered 400, as the API's is

    page.goto("/events/?q=decision%3Adeny%2Calert")
    page.get_by_label("Save this filter as").fill("Denies and alerts")
    page.get_by_label("Share with my organization").check()
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url("**/events/?q=decision%3Adeny%2Calert")
    assert page.get_by_role("link", name="Denies and alerts").get_attribute("aria-current") == "true"
    page.goto("/events/")
    page.get_by_role("link", name="Denies and alerts").click()
    page.wait_for_url("**/events/?q=decision%3Adeny%2Calert")
    assert _ids(page) == ["run-2", "run-3"]

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/events/?q=actor%3Abob%2A")
    page.locator(".filters-toggle > summary").click()
    page.get_by_role("combobox", name="Search").click()
    page.get_by_role("combobox", name="Search").press_sequentially(" dec")
    page.screenshot(path=ARTIFACTS / "search-phone.png", full_page=True)
    page.get_by_role("button", name="Delete the view Denies and alerts").click()
    assert page.get_by_role("link", name="Denies and alerts").count() == 0
    assert page.lens_problems == []


def test_search_and_facets_work_without_javascript(browser, live_server, world):  # noqa: F811
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    login(page)
    page.get_by_label("Search", exact=True).fill("tool:*_repo -no:rule")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/events/?q=tool%3A%2A_repo+-no%3Arule")
    assert _ids(page) == ["run-3"]
    page.locator(".facet a[title='Add outcome:denied']").click()
    assert _ids(page) == ["run-3"] and "outcome%3Adenied" in page.url
    # The metadata facet, which script fetches after the page, is a link that counts it in the page.
    page.get_by_role("link", name="Count by metadata.feature").click()
    assert "facet=feature" in page.url and page.locator(".facet-keys a", has_text="env").count() == 1
    context.close()
