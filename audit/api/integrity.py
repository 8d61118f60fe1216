"""The integrity API (SPEC §10): the chain head and last verification, the organization's
public signing keys, and its signed checkpoints. Thin faces of audit/integrity/selectors.py."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from audit.accounts.caller import request_caller
from audit.api import serializers as s
from audit.api.base import PAGE_PARAMS, READ_ERRORS, ReadView, api_page
from audit.integrity.checkpoints import checkpoint_wire
from audit.integrity.selectors import checkpoint_list, integrity_summary, signing_key_list, signing_key_wire

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
            choices=["changed", "removed", "inserted", "head", "checkpoint"], allow_null=True, help_text="How the chain broke."
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


class SigningKeySerializer(serializers.Serializer):
    key_id = serializers.CharField(help_text="First 16 hex digits of the SHA-256 of the 32 raw public-key bytes.")
    algorithm = serializers.ChoiceField(choices=["ed25519"])
    public_key = serializers.CharField(help_text="Base64 of the 32 raw bytes of the Ed25519 public key.")
    created_at = serializers.CharField()
    retired_at = serializers.CharField(allow_null=True, help_text="Null for the live key.")


class SigningKeyListView(ReadView):
    @extend_schema(
        operation_id="integrity_keys_list",
        summary="Public signing keys",
        description=(
            "The organization's Ed25519 public keys, the live one first. Retired keys stay listed: what they "
            "signed still verifies. Give this JSON to `python -m audit.verify --public-key` (docs/integrity.md)."
        ),
        responses={200: SigningKeySerializer(many=True), **READ_ERRORS},
    )
    def get(self, request):
        return Response([signing_key_wire(key) for key in signing_key_list(org=request_caller(request).org)])


class CheckpointSerializer(serializers.Serializer):
    org = serializers.CharField()
    seq = serializers.IntegerField(help_text="The chain head's sequence number when signed.")
    chain_hash = serializers.CharField(help_text="The chain head's hash when signed.")
    signed_at = serializers.CharField()
    key_id = serializers.CharField()
    previous = serializers.CharField(help_text="SHA-256 of the previous checkpoint's signed message; 64 zeros for the first.")
    reason = serializers.CharField(help_text="schedule, export, removal, manual…")
    signature = serializers.CharField(help_text="Base64 Ed25519 signature of the message in docs/integrity.md.")


class CheckpointPageSerializer(s.PageSerializer):
    results = CheckpointSerializer(many=True)


class CheckpointListView(ReadView):
    extra_params = PAGE_PARAMS

    @extend_schema(
        operation_id="integrity_checkpoints_list",
        summary="Signed checkpoints",
        description=(
            "The organization's signed checkpoints of its chain head, newest first, cursor-paginated. Each names "
            "the previous one's digest, so a deleted checkpoint breaks the chain of checkpoints. The signed "
            "message is stated byte for byte in docs/integrity.md."
        ),
        parameters=[*s.PAGE_PARAMETERS],
        responses={200: CheckpointPageSerializer, **READ_ERRORS},
    )
    def get(self, request):
        page = api_page(checkpoint_list(org=request_caller(request).org), request, time_field="signed_at")
        return Response(page.envelope([checkpoint_wire(checkpoint) for checkpoint in page.items]))
