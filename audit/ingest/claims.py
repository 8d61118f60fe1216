"""Claims: exactly one of several requests racing with one new event id is accepted.

Receipts used to be decided against the stored events alone, so requests that sent
the same new id with different content at the same moment were all `accepted`, and the
worker then kept all but one out (14 of 20 in one probe). Now each request, in the
transaction that writes its batch to the outbox, first *claims* its new ids (a row per
id, unique per organization, INSERT … ON CONFLICT DO NOTHING), and only then reads the
stored events. An id it could not claim is held by a batch in flight, whose content
hash decides `duplicate` or `conflict`. The order matters: a worker stores a batch and
drops its claims in one transaction, so an id is always visible as a claim or as a
stored event to a request that claims before it reads. On PostgreSQL a claim insert
waits for a racing transaction that holds the same id, then sees its outcome; SQLite
serializes writing transactions anyway (IMMEDIATE).

Per request this costs one set-based INSERT (and one DELETE by batch in the worker);
reads of other claims happen only when an id was already claimed.
"""

from django.db import connection

from audit.ingest.models import IngestClaim
from audit.ingest.store import stored_content_hashes

_TABLE = IngestClaim._meta.db_table
_SQLITE_ROWS = 200  # 4 parameters a row, under SQLite's 999


class ClaimsUnsettled(Exception):
    """Ids whose claims kept vanishing without being stored (their requests failed); retry."""


def claims_settle(*, org_id: int, batch_id: int, hashes: dict[str, str]) -> dict[str, str]:
    """Claim the new ids among `hashes` (event id -> content hash) for the batch.

    Returns id -> the content hash it is already known by (stored, or held by another
    batch in flight) for every id this batch did not get to keep; the rest are the
    batch's now. Call inside the transaction that writes the batch.
    """
    known, pending = {}, set(hashes)
    for _ in range(3):
        won = _claims_insert(org_id=org_id, batch_id=batch_id, hashes={i: hashes[i] for i in pending})
        lost = pending - won
        held = _claims_held(org_id=org_id, event_ids=lost) if lost else {}
        stored = stored_content_hashes(org_id=org_id, event_ids=won | (lost - held.keys()))
        release = [event_id for event_id in won if event_id in stored]
        if release:
            IngestClaim.objects.filter(batch_id=batch_id, event_id__in=release).delete()
        known.update({event_id: stored[event_id] for event_id in release})
        known.update(held)
        retry = {event_id for event_id in lost - held.keys() if event_id not in stored}
        known.update({event_id: stored[event_id] for event_id in lost - held.keys() - retry})
        if not retry:
            return known
        pending = retry  # their holder gave up (its request could not queue): claim again
    raise ClaimsUnsettled(", ".join(sorted(pending)))


def _claims_insert(*, org_id, batch_id, hashes) -> set[str]:
    """Insert a claim per id, skipping ids claimed already; the ids inserted.

    Sorted, so two requests claiming overlapping ids wait for each other in one order
    rather than deadlock.
    """
    if not hashes:
        return set()
    ids = sorted(hashes)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {_TABLE} (org_id, event_id, content_hash, batch_id) "
                "SELECT %s, i, h, %s FROM unnest(%s::text[], %s::text[]) AS t(i, h) ORDER BY i "
                "ON CONFLICT (org_id, event_id) DO NOTHING RETURNING event_id",
                [org_id, batch_id, ids, [hashes[i] for i in ids]],
            )
            return {row[0] for row in cursor.fetchall()}
        won = set()
        for start in range(0, len(ids), _SQLITE_ROWS):
            chunk = ids[start : start + _SQLITE_ROWS]
            cursor.execute(
                f"INSERT INTO {_TABLE} (org_id, event_id, content_hash, batch_id) VALUES "
                + ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
                + " ON CONFLICT (org_id, event_id) DO NOTHING RETURNING event_id",
                [value for i in chunk for value in (org_id, i, hashes[i], batch_id)],
            )
            won.update(row[0] for row in cursor.fetchall())
        return won


def _claims_held(*, org_id, event_ids) -> dict[str, str]:
    ids = list(event_ids)
    held = {}
    for start in range(0, len(ids), 900):
        held.update(
            IngestClaim.objects.filter(org_id=org_id, event_id__in=ids[start : start + 900]).values_list(
                "event_id", "content_hash"
            )
        )
    return held
