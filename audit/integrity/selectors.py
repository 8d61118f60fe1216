"""Reads of the integrity room: the chain head, the last verification, an event's standing,
the signing keys and the checkpoints."""

from django.db.models import OuterRef, QuerySet, Subquery

from audit.accounts.models import Organization
from audit.events.models import AuditEvent
from audit.events.wire import format_timestamp
from audit.integrity import signatures
from audit.integrity.models import ChainVerification, Checkpoint, SigningKey


def chain_head(*, org: Organization) -> dict:
    """The organization's chain head, read fresh, with the time its last event arrived."""
    head_event = AuditEvent.objects.filter(org_id=OuterRef("pk"), seq=OuterRef("chain_seq"))
    row = (
        Organization.objects.filter(pk=org.pk)
        .annotate(
            head_event_id=Subquery(head_event.values("event_id")[:1]),
            head_received_at=Subquery(head_event.values("received_at")[:1]),
        )
        .values("chain_seq", "chain_hash", "head_event_id", "head_received_at")
        .get()
    )
    received = row["head_received_at"]
    return {
        "seq": row["chain_seq"],
        "hash": row["chain_hash"],
        "event_id": row["head_event_id"],
        "received_at": format_timestamp(received) if received is not None else None,
    }


def chain_verification_last(*, org: Organization) -> ChainVerification | None:
    return ChainVerification.objects.filter(org=org).order_by("-finished_at", "-id").first()


def chain_verification_wire(verification: ChainVerification | None) -> dict | None:
    if verification is None:
        return None
    return {
        "ok": verification.ok,
        "started_at": format_timestamp(verification.started_at),
        "finished_at": format_timestamp(verification.finished_at),
        "trigger": verification.trigger,
        "from_seq": verification.from_seq,
        "to_seq": verification.to_seq,
        "verified_through": verification.verified_through,
        "events_checked": verification.events_checked,
        "kind": verification.kind or None,
        "first_bad_seq": verification.first_bad_seq,
        "first_bad_event_id": verification.first_bad_event_id,
        "message": verification.message,
    }


def integrity_summary(*, org: Organization) -> dict:
    """GET /api/v1/integrity: the chain head and the last verification."""
    return {
        "org": org.slug,
        "head": chain_head(org=org),
        "last_verification": chain_verification_wire(chain_verification_last(org=org)),
    }


_READ = object()  # chain_status reads the last verification itself


def chain_status(*, org: Organization, seq: int, last: ChainVerification | None | object = _READ) -> dict:
    """How the last verification judged event `seq`: verified, unverified or broken.

    Broken at and after the first bad event of the last run; verified up to what the
    last run proved (an earlier run's proof counts when a --since run started later).
    Pass `last` (the last verification, or None) when showing several events, to read it once.
    """
    if last is _READ:
        last = chain_verification_last(org=org)
    state = "unverified"
    if last is not None:
        if not last.ok and last.first_bad_seq is not None and seq >= last.first_bad_seq:
            state = "broken"
        elif last.from_seq <= seq <= last.verified_through:
            state = "verified"
        elif seq < last.from_seq and ChainVerification.objects.filter(
            org=org, from_seq__lte=seq, verified_through__gte=seq
        ).exists():
            state = "verified"
    return {
        "state": state,
        "seq": seq,
        "verified_at": format_timestamp(last.finished_at) if last is not None and state != "unverified" else None,
        "first_bad_seq": last.first_bad_seq if last is not None and state == "broken" else None,
    }


def signing_key_list(*, org: Organization) -> QuerySet:
    """The organization's signing keys, the newest (the live one) first."""
    return SigningKey.objects.filter(org=org).order_by("-created_at", "-id")


def signing_key_wire(key: SigningKey) -> dict:
    """SPEC §10's shape of a public key."""
    return {
        "key_id": key.key_id,
        "algorithm": signatures.ALGORITHM,
        "public_key": key.public_key,
        "created_at": format_timestamp(key.created_at),
        "retired_at": format_timestamp(key.retired_at) if key.retired_at else None,
    }


def checkpoint_list(*, org: Organization) -> QuerySet:
    """The organization's checkpoints, for a keyset page on `signed_at` (newest first)."""
    return Checkpoint.objects.filter(org=org).select_related("org", "signing_key")


def integrity_overview(*, org: Organization, checkpoints: int = 10) -> dict:
    """What the integrity page shows: the head, the last verification, the keys, the last checkpoints."""
    keys = list(signing_key_list(org=org))
    return {
        "head": chain_head(org=org),
        "last_verification": chain_verification_last(org=org),
        "live_key": next((key for key in keys if key.retired_at is None), None),
        "retired_keys": [key for key in keys if key.retired_at is not None],
        "checkpoints": list(checkpoint_list(org=org).order_by("-signed_at", "-id")[:checkpoints]),
    }
