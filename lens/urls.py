from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("audit.api.urls")),
    path("", include("audit.web.urls")),
]

# An API path no route matches answers JSON like every other API 404.
handler404 = "audit.api.errors.not_found"
