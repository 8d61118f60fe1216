from django.urls import path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from audit.api import alerts, counts, events, schema, stream, traces  # noqa: F401 (schema registers the auth scheme)
from audit.api.access_log import AccessLogView
from audit.api.conflicts import ConflictListView
from audit.api.holds import HoldCollectionView, HoldDetailView
from audit.api.integrity import CheckpointListView, IntegrityView, SigningKeyListView
from audit.api.otlp import OtlpTracesView
from audit.api.policy import PolicySimulateView
from audit.api.saved_views import SavedViewDetailView, SavedViewListView


class EventIdConverter:
    """SPEC §1 event ids: letters, digits, `_ . : -`, at most 64 — but not the reserved
    names of the sub-paths (below), so the schema does not promise an event there."""

    regex = r"(?!(?:export|histogram|stream)$)[A-Za-z0-9_.:-]{1,64}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


class TraceIdConverter(EventIdConverter):
    """Trace ids may hold any character but control characters, `/` included (percent-encoded)."""

    regex = r"[^\x00-\x1f\x7f]{1,128}"


register_converter(EventIdConverter, "event_id")
register_converter(TraceIdConverter, "trace_id")

urlpatterns = [
    path("audit-events", events.AuditEventCollectionView.as_view(), name="api-audit-events"),
    # Before the detail route; "export" (like every name of a sub-path here) is a reserved
    # event id (audit/events/fields.py RESERVED_IDS), so no event hides behind it.
    path("audit-events/export", events.AuditEventExportView.as_view(), name="api-audit-events-export"),
    path("audit-events/histogram", counts.HistogramView.as_view(), name="api-audit-events-histogram"),
    path("audit-events/stream", stream.AuditEventStreamView.as_view(), name="api-audit-events-stream"),
    path("audit-events/<event_id:event_id>", events.AuditEventDetailView.as_view(), name="api-audit-event"),
    path("stats/top", counts.TopView.as_view(), name="api-stats-top"),
    path("traces", traces.TraceListView.as_view(), name="api-traces"),
    path("traces/<trace_id:trace_id>", traces.TraceDetailView.as_view(), name="api-trace"),
    path("conflicts", ConflictListView.as_view(), name="api-conflicts"),
    path("integrity", IntegrityView.as_view(), name="api-integrity"),
    path("integrity/keys", SigningKeyListView.as_view(), name="api-integrity-keys"),
    path("integrity/checkpoints", CheckpointListView.as_view(), name="api-integrity-checkpoints"),
    # OTLP/HTTP's own path under a base URL, so OTEL_EXPORTER_OTLP_ENDPOINT=<lens>/api/v1/otlp works too.
    path("otlp/v1/traces", OtlpTracesView.as_view(), name="api-otlp-traces"),
    path("access-log", AccessLogView.as_view(), name="api-access-log"),
    path("destinations", alerts.DestinationCollectionView.as_view(), name="api-destinations"),
    path("destinations/<int:pk>", alerts.DestinationDetailView.as_view(), name="api-destination"),
    path("destinations/<int:pk>/test", alerts.DestinationTestView.as_view(), name="api-destination-test"),
    path("alert-rules", alerts.AlertRuleCollectionView.as_view(), name="api-alert-rules"),
    path("alert-rules/<int:pk>", alerts.AlertRuleDetailView.as_view(), name="api-alert-rule"),
    path("deliveries", alerts.DeliveryListView.as_view(), name="api-deliveries"),
    path("holds", HoldCollectionView.as_view(), name="api-holds"),
    path("holds/<int:pk>", HoldDetailView.as_view(), name="api-hold"),
    path("policy/simulate", PolicySimulateView.as_view(), name="api-policy-simulate"),
    path("views", SavedViewListView.as_view(), name="api-views"),
    path("views/<int:view_id>", SavedViewDetailView.as_view(), name="api-view"),
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its init script as a file and api/docs.html drops the inline
    # style, so Swagger UI runs under our CSP; its assets come from drf-spectacular-sidecar.
    path(
        "docs",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/docs.html"),
        name="api-docs",
    ),
]
