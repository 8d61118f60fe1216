from django.contrib.auth import views as auth_views
from django.urls import path

from audit.web import alerts, integrity, overview, policy, retention, saved_views, views
from audit.web.login import ThrottledLoginView

urlpatterns = [
    path("", overview.overview, name="home"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only (Django 5)
    path("events/", views.event_list, name="event-list"),
    path("facets/metadata/", views.event_facet, name="event-facet"),
    path("views/", saved_views.saved_view_create, name="saved-view-create"),
    path("views/<int:view_id>/delete/", saved_views.saved_view_delete, name="saved-view-delete"),
    path("events/<str:event_id>/", views.event_detail, name="event-detail"),
    path("traces/", views.trace_list, name="trace-list"),
    path("traces/<path:trace_id>/", views.trace_detail, name="trace-detail"),
    path("integrity/", integrity.integrity, name="integrity"),
    path("integrity/verify/", integrity.integrity_verify, name="integrity-verify"),
    path("integrity/retention/", retention.retention_update, name="integrity-retention"),
    path("alerts/", alerts.alerts_page, name="alerts"),
    path("alerts/destinations/", alerts.destination_add, name="alerts-destinations"),
    path("alerts/destinations/<int:pk>/<slug:action>/", alerts.destination_action, name="alerts-destination"),
    path("alerts/rules/", alerts.rule_add, name="alerts-rules"),
    path("alerts/rules/<int:pk>/<slug:action>/", alerts.rule_action, name="alerts-rule"),
    path("policy/", policy.policy_whatif, name="policy"),
    path("conflicts/", views.conflicts, name="conflicts"),
]
