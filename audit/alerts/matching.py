"""Matching newly stored events to alert rules: each rule keeps its own position in the
organization's chain and turns the events past it into deliveries.

Run after every committed ingest batch (the after-store hook, through a task) and
periodically (the catch-up), so an event is matched even when the worker that stored it
died before telling anyone. A rule's row lock makes both safe to run at once: whoever
comes second finds the position moved and matches only what is left.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.accounts.models import Organization
from audit.alerts.models import AlertRule, Delivery
from audit.explore.selectors import event_list
from audit.explore.vocabulary import ParameterError

logger = logging.getLogger(__name__)
MATCH_CHUNK = 10_000  # chain positions matched per transaction


def message_id(*, rule_id: int, first_seq: int) -> str:
    """The `webhook-id` of a rule's delivery: the same for every attempt, and for the same
    event to the same rule whoever matched it."""
    return f"lens_r{rule_id}_s{first_seq}"


def rule_match(*, org: Organization, rule_id: int, head: int) -> tuple[int | None, bool]:
    """Match one chunk of a rule's events past its position, up to `head`.

    Returns (the destination given new deliveries or None, whether more is left).
    """
    with transaction.atomic():
        rule = AlertRule.objects.select_for_update().filter(pk=rule_id, enabled=True).first()
        if rule is None or rule.position >= head:
            return None, False
        upto = min(head, rule.position + MATCH_CHUNK)
        now = timezone.now()
        common = {"org_id": rule.org_id, "destination_id": rule.destination_id, "rule": rule, "created_at": now,
                  "next_attempt_at": now}
        if rule.streams:
            batch = settings.LENS_STREAM_BATCH
            deliveries = [
                Delivery(first_seq=start, last_seq=min(start + batch - 1, upto), ordered=True,
                         message_id=message_id(rule_id=rule.pk, first_seq=start), **common)
                for start in range(rule.position + 1, upto + 1, batch)
            ]
        else:
            # The §7 query, through the one selector: the query language comes with it.
            matches = (
                event_list(org=org, filters={"q": rule.query})
                .filter(seq__gt=rule.position, seq__lte=upto)
                .order_by("seq")
                .values_list("seq", "event_id")
            )
            deliveries = [
                Delivery(first_seq=seq, last_seq=seq, event_id=event_id,
                         message_id=message_id(rule_id=rule.pk, first_seq=seq), **common)
                for seq, event_id in matches
            ]
        Delivery.objects.bulk_create(deliveries, batch_size=1000, ignore_conflicts=True)
        AlertRule.objects.filter(pk=rule.pk).update(position=upto)
    return (rule.destination_id if deliveries else None), upto < head


def rules_match(*, org_id: int) -> set[int]:
    """Match every enabled rule of the organization up to its chain head.

    Returns the destinations that were given new deliveries.
    """
    org = Organization.objects.filter(pk=org_id).first()
    touched = set()
    if org is None:
        return touched
    behind = AlertRule.objects.filter(org=org, enabled=True, position__lt=org.chain_seq).order_by("pk")
    for rule_id in behind.values_list("pk", flat=True):
        more = True
        while more:
            try:
                destination_id, more = rule_match(org=org, rule_id=rule_id, head=org.chain_seq)
            except ParameterError:
                # Saved queries are checked; one that no longer parses waits, unmoved, for a fix.
                logger.exception("alert rule %s has a query that no longer parses", rule_id)
                break
            if destination_id is not None:
                touched.add(destination_id)
    return touched


def orgs_behind() -> list[int]:
    """Organizations with an enabled rule that has not matched up to the chain head."""
    rules = AlertRule.objects.filter(enabled=True, position__lt=F("org__chain_seq"))
    return sorted(set(rules.values_list("org_id", flat=True)))
