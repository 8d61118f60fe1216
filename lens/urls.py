from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("audit.api.urls")),
    path("", include("audit.urls")),
]
