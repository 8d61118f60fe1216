"""Saving the current filter as a view, and deleting one's own: POST forms (with CSRF)
beside the filter panel, answered with a redirect back to the list (SPEC §9)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from audit.accounts.caller import request_caller
from audit.explore import saved_views
from audit.explore.vocabulary import ParameterError
from audit.web.views import org_view


def _back(request, query: str = "") -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) or not target.startswith("/"):
        target = reverse("event-list")
    target = target.split("?", 1)[0]
    return HttpResponseRedirect(f"{target}?{query}" if query else target)


@org_view
def saved_view_create(request, org):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    query = request.POST.get("query", "")
    try:
        view = saved_views.saved_view_create(
            caller=request_caller(request), name=request.POST.get("name", ""), query=query,
            shared=request.POST.get("shared") == "on",
        )
    except ParameterError as error:
        for name, problems in error.errors.items():
            for problem in problems:
                messages.error(request, f"The view was not saved: {name} {problem}")
        return _back(request, query if "query" not in error.errors else "")
    messages.success(request, f"Saved the view “{view.name}”.")
    return _back(request, view.query)


@org_view
def saved_view_delete(request, org, view_id):
    caller = request_caller(request)
    saved_views.saved_view_get(caller=caller, view_id=view_id)  # not visible: 404 whatever the method
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        saved_views.saved_view_delete(caller=caller, view_id=view_id)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Deleted the view.")
    return _back(request)
