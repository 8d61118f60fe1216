from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from audit.web import views
from audit.web.login import ThrottledLoginView

urlpatterns = [
    path("", RedirectView.as_view(url="/events/", permanent=False), name="home"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only (Django 5)
    path("events/", views.event_list, name="event-list"),
    path("events/<str:event_id>/", views.event_detail, name="event-detail"),
    path("traces/", views.trace_list, name="trace-list"),
    path("traces/<path:trace_id>/", views.trace_detail, name="trace-detail"),
    path("conflicts/", views.conflicts, name="conflicts"),
]
