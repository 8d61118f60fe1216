"""Reads of the alerts room, always scoped to one organization; another organization's
id is Http404, never a hint that it exists."""

from collections.abc import Mapping

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from audit.accounts.models import Organization
from audit.alerts.models import AlertRule, Delivery, DeliveryAttempt, Destination
from audit.explore.vocabulary import ParameterError

DELIVERY_FILTERS = ("destination", "rule", "status")


def destination_list(*, org: Organization) -> QuerySet:
    return Destination.objects.filter(org=org).order_by("-created_at", "-id")


def destination_get(*, org: Organization, destination_id) -> Destination:
    destination = Destination.objects.filter(org=org, pk=_id(destination_id)).first()
    if destination is None:
        raise Http404("No such destination.")
    return destination


def rule_list(*, org: Organization) -> QuerySet:
    return AlertRule.objects.filter(org=org).select_related("destination").order_by("-created_at", "-id")


def rule_get(*, org: Organization, rule_id) -> AlertRule:
    rule = AlertRule.objects.filter(org=org, pk=_id(rule_id)).select_related("destination", "org").first()
    if rule is None:
        raise Http404("No such alert rule.")
    return rule


def delivery_list(*, org: Organization, filters: Mapping | None = None) -> QuerySet:
    """Deliveries, newest first, each with its attempts (one query for all of a page's)."""
    deliveries = Delivery.objects.filter(org=org).select_related("rule", "destination")
    filters = filters or {}
    for name in ("destination", "rule"):
        if filters.get(name):
            deliveries = deliveries.filter(**{f"{name}_id": _id(filters[name], parameter=name)})
    status = filters.get("status")
    if status:
        if status not in Delivery.Status.values:
            raise ParameterError.one("status", f"must be one of {', '.join(Delivery.Status.values)}")
        deliveries = deliveries.filter(status=status)
    attempts = Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("at", "id"))
    return deliveries.prefetch_related(attempts).order_by("-created_at", "-id")


def _id(value, *, parameter: str | None = None) -> int:
    """An id from a URL or parameter: ASCII digits, or nothing matches (or a 400 for a parameter)."""
    text = str(value)
    if text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)
    if parameter:
        raise ParameterError.one(parameter, "must be an id (digits)")
    raise Http404("No such id.")
