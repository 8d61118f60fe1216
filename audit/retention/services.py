"""Retention (SPEC §11): removing expired events, and expired arguments, without breaking
the chain. docs/retention.md says how it works and how to run it.

`retention_apply` plans every organization that has a retention policy (or one), then,
unless it is a dry run, for each: signs a checkpoint (nothing is removed when Lens cannot
sign), records and signs each run of seqs it removes (audit/integrity/removals.py), drops
the whole day partitions in which every row has expired and nothing is held (PostgreSQL),
deletes the other expired, unheld rows, recomputes the summaries of the traces it touched,
and drops the arguments of events past `keep_arguments` (hash rule v2 events only).
Expiry is counted in whole UTC days of arrival: an event goes once the whole day it was
received on is older than `keep` — the partitions' granularity, on both databases.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.accounts.models import Organization
from audit.events.fields import SEARCHED_FIELDS
from audit.events.models import AuditEvent
from audit.events.search_text import event_search_text
from audit.events.wire import format_timestamp
from audit.ingest.rollups import rollups_rebuild
from audit.ingest.store import lock_org_chain
from audit.ingest.trace_summaries import trace_summaries_rebuild
from audit.integrity.checkpoints import REMOVAL, checkpoint_create
from audit.integrity.keys import SigningUnavailable
from audit.retention import partitions
from audit.retention.holds import held_condition
from audit.retention.models import RetentionPolicy
from audit.integrity.removals import removal_record

_DURATION_RE = re.compile(r"^(\d{1,6})([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
_CHUNK = 2000
# The searched fields but the arguments: what the searched text is rebuilt from once they are gone.
_KEPT_SEARCHED = tuple(field for field in SEARCHED_FIELDS if field.name != "arguments")


class RetentionError(ValueError):
    pass


def duration_parse(text: str) -> timedelta | None:
    """`90d`, `12h`, `2w`; `forever` (or empty) is None: keep forever."""
    text = (text or "").strip().lower()
    if text in ("", "forever"):
        return None
    match = _DURATION_RE.match(text)
    if not match or int(match.group(1)) == 0:
        raise RetentionError(f"{text[:32]!r} is not a duration: use hours, days or weeks (12h, 90d, 2w) or 'forever'")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def duration_text(seconds: int | None) -> str:
    if seconds is None:
        return "forever"
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    return f"{seconds // 3600}h"


def retention_set(*, org: Organization, keep: timedelta | None, keep_arguments: timedelta | None) -> RetentionPolicy:
    if keep is not None and keep_arguments is not None and keep_arguments > keep:
        raise RetentionError("arguments cannot be kept longer than the events that carry them (--keep-arguments > --keep)")
    policy, _ = RetentionPolicy.objects.update_or_create(
        org=org,
        defaults={
            "keep_seconds": int(keep.total_seconds()) if keep else None,
            "keep_arguments_seconds": int(keep_arguments.total_seconds()) if keep_arguments else None,
        },
    )
    return policy


def day_floor(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


@dataclass
class OrgRemoval:
    """What a run removes (or would remove) from one organization."""

    org: Organization
    cutoff: datetime | None = None  # events received before it expire
    arguments_cutoff: datetime | None = None
    held_q: object = None
    events: int = 0
    held: int = 0
    runs: list = field(default_factory=list)  # (first seq, last seq, count)
    partitions: list = field(default_factory=list)  # dropped whole (shared with other organizations' plans)
    arguments: int = 0
    arguments_v1: int = 0  # expired arguments kept: hashed under rule v1, removing them would break the chain
    arguments_held: int = 0
    skipped: str = ""
    checkpoint: object = None  # the checkpoint signed before the removal

    def report(self, *, dry_run: bool) -> str:
        verb = "would remove" if dry_run else "removed"
        slug = self.org.slug
        if self.skipped:
            return f"{slug}: nothing removed: {self.skipped}"
        parts = []
        if self.cutoff is not None:
            seqs = ", ".join(f"{a}–{b}" if a != b else f"{a}" for a, b, _ in self.runs[:5])
            more = f", … {len(self.runs) - 5} more runs" if len(self.runs) > 5 else ""
            parts.append(
                f"{verb} {self.events} events received before {format_timestamp(self.cutoff)}"
                + (f" (seqs {seqs}{more})" if self.runs else "")
                + f"; {self.held} held"
            )
            if self.partitions:
                parts.append(f"{'would drop' if dry_run else 'dropped'} partitions {', '.join(self.partitions)}")
        if self.arguments_cutoff is not None:
            parts.append(
                f"{verb} the arguments of {self.arguments} events received before {format_timestamp(self.arguments_cutoff)}"
                f"; {self.arguments_held} held, {self.arguments_v1} kept (stored under hash rule v1)"
            )
        return f"{slug}: " + ("; ".join(parts) if parts else "no retention set")


def _expired(plan: OrgRemoval):
    return AuditEvent.objects.filter(org=plan.org, received_at__lt=plan.cutoff)


def _removable(plan: OrgRemoval):
    events = _expired(plan)
    return events.exclude(plan.held_q) if plan.held_q is not None else events


def _arguments_expired(plan: OrgRemoval):
    events = AuditEvent.objects.filter(org=plan.org, received_at__lt=plan.arguments_cutoff, arguments_removed=False)
    if plan.cutoff is not None:
        events = events.filter(received_at__gte=plan.cutoff)  # those below go whole
    return events


def _runs(plan: OrgRemoval) -> list:
    """The removable seqs as runs of consecutive numbers (held events split them)."""
    sql, params = _removable(plan).values("seq").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(seq), max(seq), count(*) FROM (SELECT seq, seq - row_number() OVER (ORDER BY seq) AS run "
            f"FROM ({sql}) removable) numbered GROUP BY run ORDER BY 1",
            params,
        )
        return [tuple(row) for row in cursor.fetchall()]


def _plan(policy: RetentionPolicy, as_of: datetime) -> OrgRemoval:
    plan = OrgRemoval(org=policy.org)
    if policy.keep_seconds is not None:
        plan.cutoff = day_floor(as_of - timedelta(seconds=policy.keep_seconds))
    if policy.keep_arguments_seconds is not None:
        plan.arguments_cutoff = day_floor(as_of - timedelta(seconds=policy.keep_arguments_seconds))
    plan.held_q = held_condition(org=policy.org)
    if plan.cutoff is not None:
        plan.runs = _runs(plan)
        plan.events = sum(count for _, _, count in plan.runs)
        plan.held = _expired(plan).filter(plan.held_q).count() if plan.held_q is not None else 0
    if plan.arguments_cutoff is not None:
        expiring = _arguments_expired(plan).exclude(arguments__isnull=True)
        if plan.held_q is not None:
            plan.arguments_held = expiring.filter(plan.held_q).count()
            expiring = expiring.exclude(plan.held_q)
        plan.arguments_v1 = expiring.filter(arguments_sha256=None).count()
        plan.arguments = expiring.exclude(arguments_sha256=None).count()
    return plan


def _droppable_partitions(cursor, plans: list[OrgRemoval]) -> dict[str, list[int]]:
    """Day partitions every row of which this run removes: each organization in them has
    expired past the day's end and none of their rows is held. A partition shared with an
    organization that keeps longer (or is not in this run) is not dropped: the expired
    organization's rows are deleted from it instead."""
    by_org = {plan.org.pk: plan for plan in plans if plan.cutoff is not None and not plan.skipped}
    if not by_org:
        return {}
    latest = max(plan.cutoff for plan in by_org.values())
    drops = {}  # partition -> the organizations with rows in it
    for name in partitions.partitions_list(cursor):
        day = partitions.day_of(name)
        if day is None or partitions.day_start(day + timedelta(days=1)) > latest:
            continue
        lower, upper = partitions.day_start(day), partitions.day_start(day + timedelta(days=1))
        cursor.execute(f"SELECT DISTINCT org_id FROM {name}")
        present = [row[0] for row in cursor.fetchall()]
        if not present:
            continue  # empty: nothing to gain, and a later day may still need it for nobody
        if all(org_id in by_org and by_org[org_id].cutoff >= upper for org_id in present) and not any(
            by_org[org_id].held_q is not None
            and AuditEvent.objects.filter(org_id=org_id, received_at__gte=lower, received_at__lt=upper)
            .filter(by_org[org_id].held_q).exists()
            for org_id in present
        ):
            drops[name] = present
    return drops


def retention_apply(*, org: Organization | None = None, as_of: datetime | None = None, dry_run: bool = False) -> list[OrgRemoval]:
    """Apply every organization's retention (or `org`'s) as of `as_of` (now); see the module doc."""
    as_of = as_of or timezone.now()
    policies = RetentionPolicy.objects.select_related("org").order_by("org_id")
    if org is not None:
        policies = policies.filter(org=org)
    plans = [_plan(policy, as_of) for policy in policies]
    postgres = connection.vendor == "postgresql"
    if dry_run:
        if postgres:
            with connection.cursor() as cursor:
                _mark_drops(plans, _droppable_partitions(cursor, plans))
        return plans
    working = [plan for plan in plans if plan.events or plan.arguments]
    for plan in working:
        try:  # signed before anything is removed; nothing is removed without it
            plan.checkpoint = checkpoint_create(org=plan.org, reason=REMOVAL)
        except SigningUnavailable as exc:
            plan.skipped = f"cannot sign the checkpoint that must precede a removal: {exc}"
    working = [plan for plan in working if not plan.skipped]
    if not working:
        return plans
    with transaction.atomic():
        for plan in working:  # in organization order, as ingest takes one lock at a time: no deadlock
            lock_org_chain(plan.org.pk)
            # Planned again under the lock: a hold placed or a run finished meanwhile counts.
            fresh = _plan(plan.org.retention, as_of)
            plan.held_q, plan.runs, plan.events, plan.held = fresh.held_q, fresh.runs, fresh.events, fresh.held
            plan.arguments, plan.arguments_held, plan.arguments_v1 = fresh.arguments, fresh.arguments_held, fresh.arguments_v1
        drops = {}
        if postgres:
            with connection.cursor() as cursor:
                drops = _droppable_partitions(cursor, working)
        _mark_drops(working, drops)
        traces = {plan.org.pk: _touched_traces(plan) for plan in working}
        for plan in working:
            _record_runs(plan, removed_at=timezone.now())
        if drops:
            with connection.cursor() as cursor:
                for name in drops:
                    partitions.partition_drop(cursor, name)
        for plan in working:
            if plan.events:
                _removable(plan).delete()  # what the dropped partitions did not hold
                trace_summaries_rebuild(org_id=plan.org.pk, trace_ids=sorted(traces[plan.org.pk]))
            if plan.arguments:
                _arguments_remove(plan)
            derived_tables_adjust(plan)
    return plans


def _mark_drops(plans, drops: dict[str, list[int]]):
    for plan in plans:
        plan.partitions = [name for name, present in drops.items() if plan.org.pk in present]


def _touched_traces(plan: OrgRemoval) -> set[str]:
    if not plan.events:
        return set()
    return set(_removable(plan).values_list("trace_id", flat=True).distinct().iterator(chunk_size=_CHUNK))


def _record_runs(plan: OrgRemoval, *, removed_at) -> None:
    lasts = [last for _, last, _ in plan.runs]
    hashes = {}
    for start in range(0, len(lasts), 900):
        chunk = lasts[start : start + 900]
        hashes.update(AuditEvent.objects.filter(org=plan.org, seq__in=chunk).values_list("seq", "chain_hash"))
    for first, last, _ in plan.runs:
        removal_record(
            org=plan.org, checkpoint=plan.checkpoint, first_seq=first, last_seq=last, last_hash=hashes[last],
            removed_at=removed_at,
        )


def _arguments_remove(plan: OrgRemoval) -> None:
    """Null the arguments of expired rule-v2 events, and take them out of the searched text."""
    events = _arguments_expired(plan).exclude(arguments__isnull=True).exclude(arguments_sha256=None)
    if plan.held_q is not None:
        events = events.exclude(plan.held_q)
    columns = [field.storage for field in _KEPT_SEARCHED]
    while True:
        rows = list(events.order_by("id").only("id", *columns)[:_CHUNK])
        if not rows:
            break
        for row in rows:
            row.arguments, row.arguments_removed = None, True
            row.search_text = event_search_text({field.name: getattr(row, field.storage) for field in _KEPT_SEARCHED})
        AuditEvent.objects.bulk_update(rows, ["arguments", "arguments_removed", "search_text"])


def derived_tables_adjust(plan: OrgRemoval) -> None:
    """The tables derived from events follow a removal (trace summaries are rebuilt above).

    The count rollup is by call time while removal is by arrival: a removed event's call
    time is at most the clock skew the door allows after its arrival, so every day up to
    the cutoff plus that skew is recounted from the events that remain. Argument removal
    changes no count."""
    if plan.cutoff is not None and plan.events:
        rollups_rebuild(org=plan.org, until=plan.cutoff + timedelta(seconds=settings.LENS_MAX_CLOCK_SKEW_SECONDS))
