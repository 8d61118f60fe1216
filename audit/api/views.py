from rest_framework.views import APIView

from audit.api.ingest import EventIngestMixin


class AuditEventCollectionView(EventIngestMixin, APIView):
    """/api/v1/audit-events: POST ingests (SPEC §2)."""
