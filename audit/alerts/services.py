"""Writes of the alerts room: destinations, alert rules, and sending a test."""

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.accounts.models import Organization
from audit.alerts import senders
from audit.alerts.addresses import AddressRefused, http_client, url_check
from audit.alerts.delivery import destination_target, message_send
from audit.alerts.models import AlertRule, Delivery, DeliveryAttempt, Destination
from audit.alerts.sealing import seal, unseal
from audit.explore.selectors import event_list
from audit.explore.vocabulary import ParameterError

KIND = Destination.Kind


class AlertsError(ValueError):
    """Input an alerts write cannot take; `errors` maps each field to messages (a 400)."""

    def __init__(self, field: str, message: str):
        self.errors = {field: [message]}
        super().__init__(f"{field}: {message}")


def _name_clean(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise AlertsError("name", "give a name of 1–100 characters")
    return name


def _url_clean(url: str) -> str:
    url = (url or "").strip()
    if len(url) > 2000:
        raise AlertsError("url", "must be at most 2000 characters")
    try:
        url_check(url)
    except AddressRefused as exc:
        raise AlertsError("url", str(exc)) from None
    return url


def _slack_shown(url: str) -> str:
    """A Slack webhook's path is its credential: show only where it goes."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


def _sealed_secret(*, kind: str, url: str, secret: str | None) -> tuple[str, str | None]:
    """The sealed secret of a destination, and the secret to show once (a generated one)."""
    if kind == KIND.SLACK:
        if secret:
            raise AlertsError("secret", "a Slack destination has no secret: its URL is the credential")
        return seal(url), None
    if kind == KIND.SPLUNK_HEC:
        token = (secret or "").strip()
        if not token or len(token) > 200:
            raise AlertsError("token", "give the HEC token (at most 200 characters)")
        return seal(token), None
    generated = None
    if not secret:
        secret = generated = senders.webhook_secret_new()
    problem = senders.webhook_secret_problem(secret)
    if problem:
        raise AlertsError("secret", problem)
    return seal(secret), generated


def destination_create(
    *, org: Organization, name: str, kind: str, url: str, secret: str | None = None
) -> tuple[Destination, str | None]:
    """Create a destination; returns it and, for a webhook given no secret, the generated
    secret: shown this once, never again."""
    if kind not in KIND.values:
        raise AlertsError("kind", f"must be one of {', '.join(KIND.values)}")
    name, url = _name_clean(name), _url_clean(url)
    sealed, generated = _sealed_secret(kind=kind, url=url, secret=secret)
    destination = Destination.objects.create(
        org=org, name=name, kind=kind, url=_slack_shown(url) if kind == KIND.SLACK else url, sealed_secret=sealed
    )
    return destination, generated


def destination_update(
    *, destination: Destination, name: str | None = None, url: str | None = None, secret: str | None = None,
    paused: bool | None = None,
) -> Destination:
    """Change a destination. A new secret replaces the old (give the whole Slack URL again
    to change a Slack destination's address)."""
    fields = []
    if name is not None:
        destination.name = _name_clean(name)
        fields.append("name")
    if url is not None or secret is not None:
        kind = destination.kind
        current_url = unseal(destination.sealed_secret) if kind == KIND.SLACK else destination.url
        new_url = _url_clean(url) if url is not None else current_url
        if kind != KIND.SLACK and secret is None:
            secret = unseal(destination.sealed_secret)
        destination.sealed_secret, _ = _sealed_secret(kind=kind, url=new_url, secret=secret)
        destination.url = _slack_shown(new_url) if kind == KIND.SLACK else new_url
        fields += ["url", "sealed_secret"]
    if fields:
        destination.save(update_fields=fields)
    if paused is True and not destination.paused:
        destination_pause(destination=destination)
    elif paused is False and destination.paused:
        destination_resume(destination=destination)
    return destination


def destination_pause(*, destination: Destination) -> None:
    """Stop sending; matching goes on, so the deliveries wait here until it is resumed."""
    Destination.objects.filter(pk=destination.pk).update(paused=True, paused_reason="Paused by an admin")
    destination.refresh_from_db()


def destination_resume(*, destination: Destination) -> None:
    """Send again, everything that waited first, in the order it was made; the retry clock
    of each waiting delivery starts again."""
    with transaction.atomic():
        Destination.objects.filter(pk=destination.pk).update(paused=False, paused_reason="", failing_since=None)
        destination.deliveries.filter(status=Delivery.Status.PENDING).update(
            next_attempt_at=F("created_at"), retry_until=None
        )
    destination.refresh_from_db()


def destination_delete(*, destination: Destination) -> None:
    if destination.rules.exists():
        raise AlertsError("destination", "alert rules still send here; delete or move them first")
    destination.delete()


def destination_test(*, destination: Destination) -> Delivery:
    """Send a test message now and record it (it is not retried)."""
    now = timezone.now()
    delivery = Delivery.objects.create(
        org_id=destination.org_id, destination=destination, message_id=f"lens_test_{uuid.uuid4().hex}", created_at=now,
    )
    url, secret = destination_target(destination)
    message = senders.Message(
        message_id=delivery.message_id, type="lens.test", destination={"id": destination.pk, "name": destination.name}
    )
    with http_client(timeout=settings.LENS_DELIVERY_TIMEOUT) as client:
        answer = message_send(client, destination=destination, url=url, secret=secret, message=message)
    now = timezone.now()
    DeliveryAttempt.objects.create(
        delivery=delivery, at=now, status_code=answer.status_code, error=answer.error,
        duration_ms=round(answer.duration_ms, 3),
    )
    delivery.status = Delivery.Status.DELIVERED if answer.ok else Delivery.Status.FAILED
    delivery.attempts, delivery.last_status_code, delivery.last_error = 1, answer.status_code, answer.error
    delivery.delivered_at = now if answer.ok else None
    delivery.save(update_fields=["status", "attempts", "last_status_code", "last_error", "delivered_at"])
    return delivery


def query_check(*, org: Organization, query: str) -> str:
    """A rule's query, checked: `*` (every event) or a §7 query the event list accepts."""
    query = (query or "").strip()
    if not query:
        raise AlertsError("query", f"give a §7 query, or {AlertRule.EVERYTHING} for every event")
    if len(query) > 2000:
        raise AlertsError("query", "must be at most 2000 characters")
    if query != AlertRule.EVERYTHING:
        try:
            event_list(org=org, filters={"q": query})
        except ParameterError as exc:
            raise AlertsError("query", " ".join(message for messages in exc.errors.values() for message in messages))
    return query


def _destination_fits(*, query: str, destination: Destination) -> None:
    if query == AlertRule.EVERYTHING and destination.kind == KIND.SLACK:
        raise AlertsError("destination", "a stream of every event goes to a webhook or Splunk HEC, not to Slack")


def _chain_head(org: Organization) -> int:
    return Organization.objects.filter(pk=org.pk).values_list("chain_seq", flat=True).get()


def rule_create(
    *, org: Organization, name: str, query: str, destination: Destination, enabled: bool = True
) -> AlertRule:
    """A rule matches events stored from now on (its position starts at the chain head)."""
    name, query = _name_clean(name), query_check(org=org, query=query)
    if destination.org_id != org.pk:
        raise AlertsError("destination", "no such destination")
    _destination_fits(query=query, destination=destination)
    return AlertRule.objects.create(
        org=org, name=name, query=query, destination=destination, enabled=enabled, position=_chain_head(org)
    )


def rule_update(
    *, rule: AlertRule, name: str | None = None, query: str | None = None, destination: Destination | None = None,
    enabled: bool | None = None,
) -> AlertRule:
    """Change a rule; a new query applies to events stored from now on. A disabled rule
    skips what is stored meanwhile: enabling it starts again from the chain head."""
    if name is not None:
        rule.name = _name_clean(name)
    if query is not None:
        rule.query = query_check(org=rule.org, query=query)
    if destination is not None:
        if destination.org_id != rule.org_id:
            raise AlertsError("destination", "no such destination")
        rule.destination = destination
    _destination_fits(query=rule.query, destination=rule.destination)
    fields = ["name", "query", "destination", "enabled"]  # never a stale position: the matcher moves it
    if enabled is not None:
        if enabled and not rule.enabled:
            rule.position = _chain_head(rule.org)
            fields.append("position")
        rule.enabled = enabled
    rule.save(update_fields=fields)
    return rule


def rule_delete(*, rule: AlertRule) -> None:
    """Delete a rule, with its deliveries (those still pending are not sent)."""
    rule.delete()
