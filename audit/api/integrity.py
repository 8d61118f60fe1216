"""GET /api/v1/integrity: the thin HTTP face of `audit.integrity.selectors.integrity_summary`."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from audit.accounts.caller import request_caller
from audit.api.base import ReadView
from audit.integrity.selectors import integrity_summary

_VERIFICATION = inline_serializer(
    name="ChainVerification",
    allow_null=True,
    fields={
        "ok": serializers.BooleanField(),
        "started_at": serializers.CharField(),
        "finished_at": serializers.CharField(),
        "trigger": serializers.CharField(help_text="command, schedule…"),
        "from_seq": serializers.IntegerField(),
        "to_seq": serializers.IntegerField(),
        "verified_through": serializers.IntegerField(help_text="Last sequence number proven intact."),
        "events_checked": serializers.IntegerField(),
        "kind": serializers.ChoiceField(
            choices=["changed", "removed", "inserted", "head"], allow_null=True, help_text="How the chain broke."
        ),
        "first_bad_seq": serializers.IntegerField(allow_null=True),
        "first_bad_event_id": serializers.CharField(allow_null=True),
        "message": serializers.CharField(),
    },
)


class IntegrityView(ReadView):
    @extend_schema(
        summary="Chain head and last verification",
        description=(
            "The caller's organization's tamper-evident chain: its head (last sequence number, its chain hash, "
            "the id and arrival time of the last event) and the result of the last `verify_chain` run "
            "(null before the first). See docs/integrity.md for the hash rule."
        ),
        responses=inline_serializer(
            name="Integrity",
            fields={
                "org": serializers.CharField(),
                "head": inline_serializer(
                    name="ChainHead",
                    fields={
                        "seq": serializers.IntegerField(),
                        "hash": serializers.CharField(),
                        "event_id": serializers.CharField(allow_null=True),
                        "received_at": serializers.CharField(allow_null=True),
                    },
                ),
                "last_verification": _VERIFICATION,
            },
        ),
    )
    def get(self, request):
        summary = integrity_summary(org=request_caller(request).org)
        self.record(request, "integrity")  # it names the last event: a read like any other
        return Response(summary)
