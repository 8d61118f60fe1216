from django.urls import include, path, re_path

from audit.web import errors

urlpatterns = [
    path("api/v1/", include("audit.api.urls")),
    # Any other /api/ path is the API's JSON 404, with DEBUG on too.
    re_path(r"^api/", errors.api_not_found, name="api-not-found"),
    path("", include("audit.web.urls")),
]

# JSON under /api/, a Lens page with a way back everywhere else.
handler400 = "audit.web.errors.bad_request"
handler403 = "audit.web.errors.permission_denied"
handler404 = "audit.web.errors.page_not_found"
handler500 = "audit.web.errors.server_error"
