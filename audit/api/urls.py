from django.urls import path

from audit.api import views

urlpatterns = [
    path("audit-events", views.AuditEventCollectionView.as_view(), name="api-audit-events"),
]
