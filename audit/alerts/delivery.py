"""Sending the delivery outbox: at least once, oldest first, one sender per destination.

* A sender holds the destination's lease (renewed before every POST) while it sends, so
  deliveries to one destination go out one at a time, in order. A worker that dies
  mid-send leaves a lease that expires after LENS_DELIVERY_LEASE seconds; the catch-up
  then starts another sender, which sends that delivery again with the same webhook-id.
* Ordering: a stream's batches (a `*` rule) go strictly in chain order: a batch waits
  while an earlier one of its rule is pending. Alerts are independent: each carries its
  event's seq and timestamp, and one being retried does not hold back a newer alert.
* Failures are retried with exponential backoff and jitter. When the destination itself
  is down (no answer, 5xx, 408, 429) the sender stops and the other due deliveries wait
  for the same retry time, so an outage costs one attempt per retry, not one per event.
* After LENS_DELIVERY_RETRY_FOR (a day) of nothing but failures the destination is
  paused with the reason; a paused destination keeps its deliveries, which resuming
  sends. A delivery the destination keeps rejecting while it accepts others is given
  up (`failed`) after the same time.
"""

import random
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from audit.alerts import senders
from audit.alerts.addresses import AddressRefused, http_client, url_check
from audit.alerts.models import Delivery, DeliveryAttempt, Destination
from audit.alerts.sealing import unseal
from audit.events.models import AuditEvent
from audit.events.wire import WIRE_COLUMNS, event_wire

RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 3600
DUE_BATCH = 100

PENDING, DELIVERED, FAILED = Delivery.Status.PENDING, Delivery.Status.DELIVERED, Delivery.Status.FAILED


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with jitter: 10 s, 20 s, 40 s … capped at an hour, each 50–100 %."""
    ceiling = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return timedelta(seconds=ceiling * random.uniform(0.5, 1.0))


def deliveries_due(*, destination_id: int, now):
    earlier = Delivery.objects.filter(rule=OuterRef("rule"), status=PENDING, first_seq__lt=OuterRef("first_seq"))
    return (
        Delivery.objects.filter(destination_id=destination_id, status=PENDING, next_attempt_at__lte=now)
        .filter(destination__paused=False)  # a pause takes effect at the sender's next look
        .filter(Q(ordered=False) | ~Exists(earlier))
        .select_related("rule")
        .order_by("next_attempt_at", "id")
    )


def destinations_due() -> list[int]:
    """Destinations not paused, not being sent to, with a delivery due."""
    now = timezone.now()
    due = Delivery.objects.filter(destination=OuterRef("pk"), status=PENDING, next_attempt_at__lte=now)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return list(Destination.objects.filter(free, Exists(due), paused=False).values_list("pk", flat=True))


def _outcome_commit_async() -> None:
    """Let PostgreSQL commit what a send records without waiting for its disk: a crash may
    lose the last fraction of a second of records, which only means those messages are
    sent again (at least once, same webhook-id). Deliveries themselves, made by matching,
    are committed durably."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _lease(destination_id: int, owner: str, *, take: bool) -> bool:
    now = timezone.now()
    held = Destination.objects.filter(pk=destination_id, paused=False)
    held = held.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)) if take else held.filter(lease_owner=owner)
    with transaction.atomic():
        _outcome_commit_async()
        return held.update(lease_owner=owner, lease_until=now + timedelta(seconds=settings.LENS_DELIVERY_LEASE)) == 1


def _lease_release(destination_id: int, owner: str) -> None:
    Destination.objects.filter(pk=destination_id, lease_owner=owner).update(lease_owner="", lease_until=None)


def destination_deliver(*, destination_id: int, budget_seconds: float) -> bool:
    """Send what is due to one destination for up to `budget_seconds`; True when more is due."""
    owner = uuid.uuid4().hex
    if not _lease(destination_id, owner, take=True):
        return False
    try:
        _send_due(destination_id, owner, deadline=time.monotonic() + budget_seconds)
    finally:
        _lease_release(destination_id, owner)
    # Deliveries made while the lease was held found it taken: look once more, after releasing.
    return deliveries_due(destination_id=destination_id, now=timezone.now()).exists()


def destination_target(destination: Destination) -> tuple[str, str]:
    """Where to POST and the secret to sign or authorize with (a Slack URL is its own secret)."""
    secret = unseal(destination.sealed_secret) if destination.sealed_secret else ""
    return (secret if destination.kind == Destination.Kind.SLACK else destination.url), secret


def _send_due(destination_id: int, owner: str, *, deadline: float) -> None:
    destination = Destination.objects.get(pk=destination_id)
    url, secret = destination_target(destination)
    # Renewed when half of it is left: a renewal per POST cost as much as the POST.
    renew_every = settings.LENS_DELIVERY_LEASE / 2
    renewed = time.monotonic()
    with http_client(timeout=settings.LENS_DELIVERY_TIMEOUT) as client:
        while time.monotonic() < deadline:
            due = list(deliveries_due(destination_id=destination_id, now=timezone.now())[:DUE_BATCH])
            if not due:
                return
            alert_events = _alert_events(due)
            delivered = []  # answered 2xx: recorded together, one commit per batch
            try:
                for delivery in due:
                    if time.monotonic() >= deadline:
                        return
                    if time.monotonic() - renewed >= renew_every:
                        if not _lease(destination_id, owner, take=False):
                            return  # paused meanwhile, or the lease was lost to another sender
                        renewed = time.monotonic()
                    events = alert_events.get(delivery.first_seq) if not delivery.ordered else _stream_events(delivery)
                    if not events:
                        _delivery_close(delivery, FAILED if not delivery.ordered else DELIVERED,
                                        error="the events were removed before they could be sent")
                        continue
                    message = senders.Message(
                        message_id=delivery.message_id, type="lens.stream" if delivery.ordered else "lens.alert",
                        rule={"id": delivery.rule_id, "name": delivery.rule.name}, events=events,
                    )
                    answer = message_send(client, destination=destination, url=url, secret=secret, message=message)
                    if answer.ok:
                        delivered.append((delivery, answer))
                        continue
                    deliveries_delivered(destination=destination, sent=delivered)
                    delivered = []
                    if not delivery_failed(delivery=delivery, destination=destination, answer=answer):
                        return  # the destination is down: the others wait for the same retry
            finally:
                # A worker dying before this line sends these again (at least once, same webhook-id).
                deliveries_delivered(destination=destination, sent=delivered)


def message_send(client, *, destination: Destination, url: str, secret: str, message: senders.Message):
    """Check the address rules (again: they may have changed since it was saved) and POST."""
    try:
        url_check(url, resolve=False)  # the connection itself checks every resolved address
    except AddressRefused as exc:
        return senders.Answer(status_code=None, error=f"refused: {exc}", duration_ms=0.0)
    headers, body = senders.request_build(kind=destination.kind, secret=secret, message=message)
    return senders.post(client, url=url, headers=headers, body=body)


def _alert_events(due: list[Delivery]) -> dict[int, list[dict]]:
    seqs = [delivery.first_seq for delivery in due if not delivery.ordered]
    if not seqs:
        return {}
    org_id = due[0].org_id
    rows = AuditEvent.objects.filter(org_id=org_id, seq__in=seqs).only(*WIRE_COLUMNS)
    return {row.seq: [event_wire(row)] for row in rows}


def _stream_events(delivery: Delivery) -> list[dict]:
    rows = AuditEvent.objects.filter(org_id=delivery.org_id, seq__gte=delivery.first_seq, seq__lte=delivery.last_seq)
    return [event_wire(row) for row in rows.only(*WIRE_COLUMNS).order_by("seq")]


def _delivery_close(delivery: Delivery, status: str, *, error: str) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(status=status, next_attempt_at=None, last_error=error)


def deliveries_delivered(*, destination: Destination, sent: list[tuple[Delivery, senders.Answer]]) -> None:
    """Record deliveries their destination answered with a 2xx, in one transaction."""
    if not sent:
        return
    now = timezone.now()
    with transaction.atomic():
        _outcome_commit_async()
        DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(delivery=delivery, at=answer.at, status_code=answer.status_code,
                            duration_ms=round(answer.duration_ms, 3))
            for delivery, answer in sent
        )
        by_code = {}
        for delivery, answer in sent:
            by_code.setdefault(answer.status_code, []).append(delivery.pk)
        for code, ids in by_code.items():
            Delivery.objects.filter(pk__in=ids).update(
                status=DELIVERED, delivered_at=now, next_attempt_at=None, attempts=F("attempts") + 1,
                last_status_code=code, last_error="",
            )
        if destination.failing_since is not None:
            Destination.objects.filter(pk=destination.pk).update(failing_since=None)
            destination.failing_since = None


def delivery_failed(*, delivery: Delivery, destination: Destination, answer: senders.Answer) -> bool:
    """Record a failed attempt and what follows from it; False when the destination is down."""
    now = timezone.now()
    with transaction.atomic():
        _outcome_commit_async()
        DeliveryAttempt.objects.create(
            delivery=delivery, at=answer.at, status_code=answer.status_code, error=answer.error,
            duration_ms=round(answer.duration_ms, 3),
        )
        done = {"attempts": F("attempts") + 1, "last_status_code": answer.status_code, "last_error": answer.error}
        if destination.failing_since is None:
            destination.failing_since = now
            Destination.objects.filter(pk=destination.pk, failing_since=None).update(failing_since=now)
        retry_for = timedelta(seconds=settings.LENS_DELIVERY_RETRY_FOR)
        retry_until = delivery.retry_until or now + retry_for
        if now - destination.failing_since >= retry_for:
            destination_auto_pause(destination=destination, answer=answer)
            Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now, retry_until=retry_until, **done)
            return False
        if now >= retry_until:
            # It failed for a day while the destination took others: this message is the problem.
            Delivery.objects.filter(pk=delivery.pk).update(status=FAILED, next_attempt_at=None, **done)
            return True
        next_attempt = now + retry_delay(delivery.attempts + 1)
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=next_attempt, retry_until=retry_until, **done)
        if answer.destination_down:
            Delivery.objects.filter(
                destination=destination, status=PENDING, next_attempt_at__lt=next_attempt
            ).update(next_attempt_at=next_attempt)
            return False
        return True


def destination_auto_pause(*, destination: Destination, answer: senders.Answer) -> None:
    hours = settings.LENS_DELIVERY_RETRY_FOR / 3600
    last = f"HTTP {answer.status_code}" if answer.status_code else "no answer"
    reason = (
        f"Paused automatically: every delivery failed for {hours:g} h, since "
        f"{destination.failing_since:%Y-%m-%d %H:%M} UTC (last: {last}, {answer.error})"
    )
    Destination.objects.filter(pk=destination.pk).update(paused=True, paused_reason=reason[:500])
