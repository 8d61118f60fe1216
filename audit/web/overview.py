"""The overview at `/` (SPEC §8): decisions over time, deny/alert/error/rate-limit rates, the top
denied actors and tools, the rules that fired most, the slowest tools; every figure links to
the events behind it."""

from django.shortcuts import render

from audit.web.charts import OVERVIEW_WINDOWS, overview_build
from audit.web.views import org_view

DEFAULT_WINDOW = "24h"


@org_view
def overview(request, org):
    windows = dict(OVERVIEW_WINDOWS)
    since = request.GET.get("since", DEFAULT_WINDOW)
    if since not in windows:
        since = DEFAULT_WINDOW
    context = {"org": org, "nav": "overview", "since": since, "window_label": windows[since],
               "windows": OVERVIEW_WINDOWS, **overview_build(org=org, since=since)}
    return render(request, "audit/overview.html", context)
