"""Retention end to end on the running database (both): what expires goes, what is held or
recent stays, arguments go after a shorter period, and the chain — verify_chain and an
evidence export through the offline verifier — still verifies after each."""

import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.events.models import AuditEvent
from audit.events.wire import format_timestamp
from audit.explore.counts import event_histogram, event_top
from audit.explore.selectors import event_list
from audit.ingest.models import TraceSummary
from audit.integrity.models import RemovedRange
from audit.integrity.verification import chain_verify
from audit.retention import partitions
from audit.retention.holds import hold_place, hold_release
from audit.retention.services import duration_parse, retention_apply, retention_set
from tests.factories import wire_event
from tests.retention.conftest import store_at

ROOT = Path(__file__).resolve().parents[2]


def _keep(org, keep="30d", keep_arguments=""):
    retention_set(org=org, keep=duration_parse(keep), keep_arguments=duration_parse(keep_arguments))


def _ids(org):
    return sorted(AuditEvent.objects.filter(org=org).values_list("event_id", flat=True))


def _verified(org):
    check = chain_verify(org=org)
    assert check.ok, check.message
    return check


def _export_verifies(org, api_client, tmp_path, query="manifest=1"):
    from audit.accounts import services

    key = services.api_key_create(org=org, scopes=["read"], name="auditor")[1]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = api_client.get(f"/api/v1/audit-events/export?{query}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    (tmp_path / "keys.json").write_bytes(api_client.get("/api/v1/integrity/keys").content)
    (tmp_path / "export.ndjson").write_bytes(body)
    result = subprocess.run(
        [sys.executable, "-m", "audit.verify", str(tmp_path / "export.ndjson"), "--public-key", str(tmp_path / "keys.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return body


def test_expired_events_go_and_the_rest_still_verifies(org, now, long_ago, lately, api_client, tmp_path):
    store_at(org, long_ago, *(wire_event(id=f"old-{n}", trace_id="trace-old") for n in range(5)))
    store_at(org, lately, *(wire_event(id=f"new-{n}", trace_id=f"trace-new-{n}") for n in range(3)))
    _keep(org)

    [plan] = retention_apply(as_of=now)

    assert plan.events == 5 and plan.runs == [(1, 5, 5)]
    assert _ids(org) == ["new-0", "new-1", "new-2"]
    assert list(RemovedRange.objects.filter(org=org).values_list("first_seq", "last_seq")) == [(1, 5)]
    assert RemovedRange.objects.get(org=org).checkpoint.reason == "removal"
    assert not TraceSummary.objects.filter(org=org, trace_id="trace-old").exists()
    assert _verified(org).verified_through == 8
    lines = _export_verifies(org, api_client, tmp_path).splitlines()
    first_kept = json.loads(lines[-3])  # newest first: the oldest kept event is the last body line
    assert first_kept["seq"] == 6 and first_kept["prev_chain_hash"] == RemovedRange.objects.get(org=org).last_hash
    assert json.loads(lines[-2])["manifest"]["removals"][0]["last_seq"] == 5
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            assert partitions.partition_name(long_ago.date()) not in partitions.partitions_list(cursor)
    # A second run finds nothing more, and new events still chain on.
    assert retention_apply(as_of=now)[0].events == 0
    store_at(org, now, wire_event(id="newer"))
    assert _verified(org).verified_through == 9


def test_the_counts_follow_a_removal(org, now, long_ago, lately):
    """The rollup counts by call time, removal goes by arrival: what was removed is no longer
    counted, from the rollup, and what stays (held or newer) still is."""
    def called(moment):  # as the door allows: called before it arrived
        return format_timestamp(moment - timedelta(minutes=1))

    store_at(org, long_ago, *(wire_event(id=f"old-{n}", actor="old@x.com", timestamp=called(long_ago)) for n in range(4)))
    store_at(org, lately, *(wire_event(id=f"new-{n}", actor="new@x.com", timestamp=called(lately)) for n in range(2)))
    assert event_histogram(org=org, filters={}).total == 6
    _keep(org)

    retention_apply(as_of=now)

    histogram = event_histogram(org=org, filters={})
    assert (histogram.source, histogram.total) == ("rollup", 2)
    top = event_top(org=org, by="actor", filters={}, limit=10, order="count")
    assert [(row.value, row.count) for row in top.results] == [("new@x.com", 2)]


def test_dry_run_prints_and_removes_nothing(org, now, long_ago):
    store_at(org, long_ago, *(wire_event() for _ in range(4)))
    _keep(org)
    out = StringIO()
    call_command("apply_retention", "--org", org.slug, "--dry-run", "--as-of", now.isoformat(), stdout=out)
    assert "acme: would remove 4 events received before" in out.getvalue()
    assert AuditEvent.objects.filter(org=org).count() == 4
    assert not RemovedRange.objects.exists()


def test_held_events_are_never_removed(org, now, long_ago, api_client, tmp_path):
    store_at(org, long_ago, *(wire_event(id=f"e{n}", actor="bob@x.com" if n in (2, 3) else "alice@x.com") for n in range(1, 7)))
    hold = hold_place(org=org, reason="case 42", query="actor:bob@x.com", by="test")
    _keep(org)

    plan = retention_apply(as_of=now)[0]

    assert (plan.events, plan.held) == (4, 2) and plan.runs == [(1, 1, 1), (4, 6, 3)]
    assert _ids(org) == ["e2", "e3"]
    _verified(org)
    _export_verifies(org, api_client, tmp_path)
    # Released, they go at the next run; the chain then starts after every removed run.
    hold_release(hold=hold, by="test")
    assert retention_apply(as_of=now)[0].events == 2
    assert _ids(org) == []
    assert _verified(org).verified_through == 6


def test_arguments_go_after_the_shorter_period_and_the_chain_holds(org, now, api_client, tmp_path):
    store_at(org, now - timedelta(days=20), wire_event(id="a1", arguments={"secret": "hunter2-value"}))
    store_at(org, now, wire_event(id="a2", arguments={"secret": "hunter2-value"}))
    _keep(org, "90d", "10d")

    plan = retention_apply(as_of=now)[0]

    assert (plan.events, plan.arguments) == (0, 1)
    old, new = AuditEvent.objects.get(event_id="a1"), AuditEvent.objects.get(event_id="a2")
    assert (old.arguments, old.arguments_removed, new.arguments_removed) == (None, True, False)
    assert "hunter2" not in old.search_text
    assert list(event_list(org=org, filters={"q": "hunter2-value"}).values_list("event_id", flat=True)) == ["a2"]
    _verified(org)
    body = _export_verifies(org, api_client, tmp_path)
    assert b'"arguments":null' in body and b'"arguments_removed":true' in body


def test_a_gap_without_its_signed_record_is_still_a_removal(org, now, long_ago):
    store_at(org, long_ago, *(wire_event() for _ in range(3)))
    _keep(org)
    retention_apply(as_of=now)
    store_at(org, now, *(wire_event() for _ in range(3)))
    AuditEvent.objects.filter(org=org, seq=5).delete()
    assert chain_verify(org=org).kind == "removed"
    # A forged record for the gap does not verify either.
    record = RemovedRange.objects.get(org=org)
    RemovedRange.objects.create(
        org=org, first_seq=5, last_seq=5, last_hash=record.last_hash, removed_at=record.removed_at,
        checkpoint=record.checkpoint, signing_key=record.signing_key, signature=record.signature,
    )
    assert chain_verify(org=org).kind in ("removed", "changed", "inserted")


def test_nothing_is_removed_when_lens_cannot_sign(org, now, long_ago, settings):
    store_at(org, long_ago, wire_event())
    _keep(org)
    settings.LENS_SIGNING_KEY_SECRET = ""
    with pytest.raises(CommandError):
        call_command("apply_retention", "--as-of", now.isoformat(), stdout=StringIO())
    assert AuditEvent.objects.filter(org=org).count() == 1


def test_organizations_sharing_a_day_keep_their_own_retention(org, other_org, now, long_ago):
    store_at(org, long_ago, wire_event(id="acme-old"))
    store_at(other_org, long_ago, wire_event(id="globex-old"))
    _keep(org, "30d")
    _keep(other_org, "90d")

    retention_apply(as_of=now)

    assert _ids(org) == [] and _ids(other_org) == ["globex-old"]
    if connection.vendor == "postgresql":  # the shared day stays; only acme's row left it
        with connection.cursor() as cursor:
            assert partitions.partition_name(long_ago.date()) in partitions.partitions_list(cursor)
    _verified(org)
    _verified(other_org)


def test_set_retention_refuses_nonsense(org):
    with pytest.raises(CommandError, match="not a duration"):
        call_command("set_retention", "--org", org.slug, "--keep", "ninety")
    with pytest.raises(CommandError, match="longer than the events"):
        call_command("set_retention", "--org", org.slug, "--keep", "30d", "--keep-arguments", "60d")
    out = StringIO()
    call_command("set_retention", "--org", org.slug, "--keep", "12w", "--keep-arguments", "12h", stdout=out)
    assert out.getvalue().strip() == "acme: keeps events 84d, arguments 12h"
