"""Writes: ingesting events, API keys, logins.

The ingest path has two halves. `events_receive` runs in the request: it parses and
validates the body, answers duplicates and conflicts against what is stored, and
hands the accepted events to the queue. `events_ingest` runs in the worker: it
writes a batch set-based and idempotently, extends the organization's hash chain
and upserts the trace summaries, all in one transaction, so a retry after any
failure finds either nothing or everything of the batch stored.
"""

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from celery.exceptions import Retry
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from audit import chain
from audit.models import ApiKey, AuditEvent, IngestConflict, Membership, Organization, PendingBatch
from audit.trace_summaries import trace_summaries_upsert
from audit.validation import BodyError, format_timestamp, parse_body, validate_event

logger = logging.getLogger(__name__)

ACCEPTED, DUPLICATE, CONFLICT, INVALID = "accepted", "duplicate", "conflict", "invalid"
# Namespace of the per-organization advisory lock (pg_advisory_xact_lock(int, int)).
_CHAIN_LOCK_CLASS = 0x4C454E53  # "LENS"


class QueueUnavailable(Exception):
    """The accepted events could not be handed to the queue; nothing was acknowledged."""


@dataclass
class IngestReceipts:
    receipts: list = field(default_factory=list)

    def count(self, status):
        return sum(1 for receipt in self.receipts if receipt["status"] == status)

    @property
    def all_safe(self):
        return all(receipt["status"] in (ACCEPTED, DUPLICATE) for receipt in self.receipts)

    @property
    def none_safe(self):
        return not any(receipt["status"] in (ACCEPTED, DUPLICATE) for receipt in self.receipts)


def _stored_content_hashes(*, org_id, event_ids):
    """Event id -> content hash of those of `event_ids` already stored for the org."""
    if connection.vendor == "postgresql":
        return _stored_hashes_postgres(org_id, event_ids)
    stored = {}
    ids = list(event_ids)
    for start in range(0, len(ids), 900):
        stored.update(
            AuditEvent.objects.filter(org_id=org_id, event_id__in=ids[start : start + 900]).values_list(
                "event_id", "content_hash"
            )
        )
    return stored


def events_receive(*, org: Organization, body: bytes, content_type: str) -> IngestReceipts:
    """Validate a request body and queue its new events. Raises BodyError, QueueUnavailable."""
    items = parse_body(body, content_type)
    if len(items) > settings.LENS_MAX_BATCH_EVENTS:
        raise BodyError(f"batch of {len(items)} events is over the limit of {settings.LENS_MAX_BATCH_EVENTS}")

    result = IngestReceipts()
    candidates = {}  # event id -> (content hash, clean event)
    for index, raw in enumerate(items):
        event, errors = validate_event(raw, max_bytes=settings.LENS_MAX_EVENT_BYTES)
        if event is None:
            sent_id = raw.get("id") if isinstance(raw, dict) else None
            receipt_id = sent_id if isinstance(sent_id, str) and len(sent_id) <= 64 else None
            result.receipts.append({"index": index, "id": receipt_id, "status": INVALID, "errors": errors})
            continue
        digest = chain.content_hash(event)
        event["id"] = event["id"] or f"lens-{digest[:40]}"
        earlier = candidates.get(event["id"])
        if earlier is None:
            candidates[event["id"]] = (digest, event)
            status = ACCEPTED
        else:
            status = DUPLICATE if earlier[0] == digest else CONFLICT
        result.receipts.append({"index": index, "id": event["id"], "status": status, "_hash": digest})

    stored = _stored_content_hashes(org_id=org.pk, event_ids=candidates)
    for receipt in result.receipts:
        if receipt["status"] == ACCEPTED and receipt["id"] in stored:
            receipt["status"] = DUPLICATE if stored[receipt["id"]] == receipt["_hash"] else CONFLICT
    for receipt in result.receipts:
        if receipt.pop("_hash", None) and receipt["status"] == CONFLICT:
            receipt["errors"] = {"id": "was already received with different content; this event was kept out"}

    new_events = [candidates[r["id"]][1] for r in result.receipts if r["status"] == ACCEPTED]
    if new_events:
        # Durable in PostgreSQL before the 202: a message lost by the broker leaves the
        # batch here for the sweep, so nothing acknowledged depends on Redis alone.
        batch = PendingBatch.objects.create(org=org, events=new_events, received_at=format_timestamp(timezone.now()))
        _enqueue(batch=batch)
    return result


def _enqueue(*, batch: PendingBatch):
    from audit.tasks import ingest_events

    try:
        ingest_events.apply_async(
            kwargs={"batch_id": batch.pk},
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        )
    except Exception as exc:
        # In-process the task is the write itself: a database outage means "not stored,
        # retry later" like a broker outage; anything else there is a bug (a 500).
        # (Celery's autoretry surfaces a database error as Retry in-process.)
        if ingest_events.app.conf.task_always_eager and not isinstance(exc, (OperationalError, InterfaceError, Retry)):
            raise
        logger.warning("could not queue %d events for org %s: %s", len(batch.events), batch.org_id, exc)
        # Not acknowledged (503), so not kept: the sender resends it.
        PendingBatch.objects.filter(pk=batch.pk).delete()
        raise QueueUnavailable(str(exc)) from exc


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0


def _lock_org_chain(org_id):
    """Serialize chain extension per organization (SQLite's IMMEDIATE transactions already do)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_CHAIN_LOCK_CLASS, org_id])


def events_ingest(*, org_id: int, events: list[dict], received_at: str) -> IngestResult:
    """Store clean wire events once each, extending the organization's hash chain."""
    result = IngestResult()
    received = datetime.fromisoformat(received_at).astimezone(UTC)
    received_at = format_timestamp(received)  # hash exactly what a stored row reads back as
    postgres = connection.vendor == "postgresql"
    with transaction.atomic():
        _lock_org_chain(org_id)
        head_seq, head_hash = Organization.objects.filter(pk=org_id).values_list("chain_seq", "chain_hash").get()
        first_seq = head_seq
        event_ids = {event["id"] for event in events}
        stored = _stored_content_hashes(org_id=org_id, event_ids=event_ids)

        rows, conflicts = [], []
        for event in events:
            event_id, digest = event["id"], chain.content_hash(event)
            known = stored.get(event_id)
            if known is not None:
                if known == digest:
                    result.duplicates += 1
                else:
                    conflicts.append(IngestConflict(org_id=org_id, event_id=event_id, content_hash=digest, payload=event))
                continue
            stored[event_id] = digest
            head_seq += 1
            record = {**event, "received_at": received_at, "seq": head_seq}
            head_hash = chain.next_chain_hash(head_hash, record)
            rows.append((event, digest, head_seq, head_hash))

        if rows:
            if postgres:
                _copy_events(org_id, rows, received_at)
                trace_summaries_upsert(org_id=org_id, seq_after=first_seq)
            else:
                stored_rows = [_event_row(org_id, event, received, *chained) for event, *chained in rows]
                AuditEvent.objects.bulk_create(stored_rows, batch_size=1000)
                trace_summaries_upsert(org_id=org_id, events=stored_rows)
            Organization.objects.filter(pk=org_id).update(chain_seq=head_seq, chain_hash=head_hash)
        if conflicts:
            IngestConflict.objects.bulk_create(conflicts)
            logger.warning("kept out %d conflicting events for org %s", len(conflicts), org_id)
    result.stored, result.conflicts = len(rows), len(conflicts)
    return result


def _stored_hashes_postgres(org_id, event_ids):
    """One round trip for the batch: a probe per id on the (org, event_id) unique index.

    The LATERAL ... LIMIT 1 keeps that plan even on statistics older than the table
    (a fast load before autovacuum analyzes it), where `event_id = ANY(...)` was
    planned as a scan of the whole organization: 313 ms instead of 2 ms at 200k rows.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.event_id, e.content_hash FROM unnest(%s::text[]) AS i(event_id) CROSS JOIN LATERAL "
            "(SELECT event_id, content_hash FROM audit_auditevent WHERE org_id = %s AND event_id = i.event_id LIMIT 1) e",
            [list(event_ids), org_id],
        )
        return dict(cursor.fetchall())


_COPY_SQL = (
    "COPY audit_auditevent (org_id, event_id, timestamp, received_at, trace_id, actor, slug, method, tool, "
    "arguments, decision, rule, reason, metadata, duration_ms, outcome, status_code, error, server, "
    "content_hash, seq, chain_hash) FROM STDIN"
)


def _json_or_null(value):
    return None if value is None else json.dumps(value)


def _copy_events(org_id, rows, received_at):
    """COPY the batch straight into the table: measured ~4x cheaper than bulk_create's INSERT.

    No staging table or ON CONFLICT is needed: the batch was checked against what is
    stored while holding the organization's chain lock, which every writer takes, so
    no row can collide; if one somehow did, COPY fails and the transaction rolls back.
    """
    with connection.cursor() as cursor:
        with cursor.copy(_COPY_SQL) as copy:
            for event, digest, seq, chain_hash in rows:
                copy.write_row(
                    (
                        org_id, event["id"], event["timestamp"], received_at, event["trace_id"], event["actor"],
                        event["slug"], event["method"], event["tool"], _json_or_null(event["arguments"]),
                        event["decision"], _json_or_null(event["rule"]), event["reason"],
                        json.dumps(event["metadata"] if event["metadata"] is not None else {}),
                        event["duration_ms"], event["outcome"], event["status_code"], event["error"],
                        _json_or_null(event["server"]), digest, seq, chain_hash,
                    )
                )


def pending_batch_ingest(*, batch_id: int) -> IngestResult | None:
    """Store a pending batch and delete it, in one transaction; None if already stored.

    The row lock makes a redelivered message and the sweep wait for each other, and
    the later one finds the batch gone.
    """
    with transaction.atomic():
        batch = PendingBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None:
            return None
        result = events_ingest(org_id=batch.org_id, events=batch.events, received_at=batch.received_at)
        batch.delete()
    return result


def pending_batch_failed(*, batch_id: int, error: str) -> None:
    """Keep the batch for the sweep, saying why it could not be stored."""
    PendingBatch.objects.filter(pk=batch_id).update(attempts=F("attempts") + 1, last_error=error[:10_000])


def pending_batches_sweep(*, older_than: timedelta) -> IngestResult:
    """Store the batches pending longer than `older_than` (their message was lost, or they failed)."""
    total = IngestResult()
    stale = PendingBatch.objects.filter(created_at__lt=timezone.now() - older_than).order_by("id")
    for batch_id in stale.values_list("pk", flat=True):
        try:
            result = pending_batch_ingest(batch_id=batch_id)
        except (OperationalError, InterfaceError):
            raise  # the database is away: the next sweep tries again
        except Exception as exc:
            logger.exception("pending batch %s still cannot be stored", batch_id)
            pending_batch_failed(batch_id=batch_id, error=repr(exc))
            continue
        if result is not None:
            total.stored += result.stored
            total.duplicates += result.duplicates
            total.conflicts += result.conflicts
    return total


def _event_row(org_id, event, received, digest, seq, chain_hash):
    return AuditEvent(
        org_id=org_id,
        event_id=event["id"],
        timestamp=datetime.fromisoformat(event["timestamp"]),
        received_at=received,
        trace_id=event["trace_id"],
        actor=event["actor"],
        slug=event["slug"],
        method=event["method"],
        tool=event["tool"],
        arguments=event["arguments"],
        decision=event["decision"],
        rule=event["rule"],
        reason=event["reason"],
        metadata=event["metadata"],
        duration_ms=event["duration_ms"],
        outcome=event["outcome"],
        status_code=event["status_code"],
        error=event["error"],
        server=event["server"],
        content_hash=digest,
        seq=seq,
        chain_hash=chain_hash,
    )


# --- Organizations, keys and logins -------------------------------------------------


def org_get_or_create(*, slug: str) -> Organization:
    org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": slug})
    return org


def _key_digest(key: str) -> str:
    # Keys carry 256 random bits, so a plain SHA-256 is a safe one-way store.
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, org: Organization, scopes: list[str], name: str = "") -> tuple[ApiKey, str]:
    """Create a key; the plain key is returned once and never stored."""
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {', '.join(ApiKey.Scope.values)}; got {', '.join(scopes) or 'none'}")
    prefix = secrets.token_hex(4)
    plain = f"lens_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(org=org, name=name, prefix=prefix, key_hash=_key_digest(plain), scopes=sorted(set(scopes)))
    return key, plain


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now())


def api_key_authenticate(*, plain: str) -> ApiKey | None:
    """The live key matching `plain`, or None. Compared in constant time."""
    parts = plain.split("_")
    if len(parts) < 3 or parts[0] != "lens":
        return None
    key = ApiKey.objects.select_related("org").filter(prefix=parts[1], revoked_at=None).first()
    if key is None or not secrets.compare_digest(key.key_hash, _key_digest(plain)):
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        # At most one write a minute per key: last-used is for people, not accounting.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def user_create(*, org: Organization, username: str, password: str, role: str = Membership.Role.VIEWER):
    """Create a login in `org`, or reset the password and role of an existing one there."""
    if role not in Membership.Role.values:
        raise ValueError(f"role must be one of {', '.join(Membership.Role.values)}")
    user_model = get_user_model()
    with transaction.atomic():
        user, _ = user_model.objects.get_or_create(username=username)
        membership = Membership.objects.filter(user=user).first()
        if membership is not None and membership.org_id != org.pk:
            raise ValueError(f"user {username!r} already belongs to another organization")
        user.set_password(password)
        user.is_staff = False
        user.save()
        Membership.objects.update_or_create(user=user, defaults={"org": org, "role": role})
    return user
