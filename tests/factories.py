"""factory_boy factories. Events are built as wire dicts and stored through the real
ingest service, so every stored test event has a valid chain and trace summary."""

import itertools
from datetime import UTC, datetime, timedelta

import factory

from audit.accounts.models import Organization
from audit.events.models import AuditEvent
from audit.ingest import store

_counter = itertools.count(1)
BASE_TIME = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


def wire_event(**overrides) -> dict:
    """A valid SPEC §1 event; override any field (None removes it)."""
    n = next(_counter)
    event = {
        "id": f"evt-{n}",
        "timestamp": (BASE_TIME + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
        "trace_id": f"trace-{n}",
        "actor": "alice@company.com",
        "slug": "github-prod",
        "method": "tools/call",
        "tool": "list_issues",
        "arguments": {"repo": "acme/igris"},
        "decision": "allow",
        "rule": {"id": "r-1", "policy": "github-guardrails", "index": 0, "tool": "list_*", "action": "allow", "conditions": {}},
        "metadata": {"feature": "issue-triage", "env": "production"},
        "duration_ms": 212,
        "outcome": "success",
        "status_code": 200,
    }
    event.update(overrides)
    return {key: value for key, value in event.items() if value is not None or key in ("actor", "rule", "error", "server")}


def store_events(org: Organization, *events: dict) -> list[AuditEvent]:
    """Validate and ingest wire events synchronously; returns the stored rows in order."""
    store.events_store_now(org_id=org.pk, raw_events=list(events))
    ids = [event["id"] for event in events]
    rows = {row.event_id: row for row in AuditEvent.objects.filter(org=org, event_id__in=ids)}
    return [rows[event_id] for event_id in ids]


def store_event(org: Organization, **overrides) -> AuditEvent:
    return store_events(org, wire_event(**overrides))[0]
