"""Signed checkpoints of an organization's chain head (SPEC §10).

`checkpoint_create` signs the head as it is now with the organization's live key
(audit/integrity/keys.py). Each checkpoint names the digest of the one before it, so the
checkpoints form a chain of their own that a deleted checkpoint breaks. They are made
hourly (the `audit.verify_chains` task), on every evidence export, and by any code about
to remove events, which calls this first and removes nothing if it raises:

    from audit.integrity.checkpoints import REMOVAL, checkpoint_create
    checkpoint_create(org=org, reason=REMOVAL)

`checkpoint_chain_check` proves a run of them (signatures, links, a head that never goes
back); verification (audit/integrity/verification.py) uses them as anchors.
"""

from dataclasses import dataclass, field
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.accounts.models import Organization
from audit.events.wire import format_timestamp
from audit.integrity import keys, signatures
from audit.integrity.models import Checkpoint, SigningKey

# Reasons Lens uses; any other lowercase word (`[a-z][a-z0-9-]{0,31}`) is accepted too.
SCHEDULE, EXPORT, REMOVAL, MANUAL = "schedule", "export", "removal", "manual"

def checkpoint_wire(checkpoint: Checkpoint, *, org: Organization | None = None, key: SigningKey | None = None) -> dict:
    """The checkpoint as the API, the manifests and the published copies show it.

    Pass `org` and `key` when they are at hand, to spare the lookups."""
    return {
        "org": (org or checkpoint.org).slug,
        "seq": checkpoint.seq,
        "chain_hash": checkpoint.chain_hash,
        "signed_at": format_timestamp(checkpoint.signed_at),
        "key_id": (key or checkpoint.signing_key).key_id,
        "previous": checkpoint.previous,
        "reason": checkpoint.reason,
        "signature": checkpoint.signature,
    }


def checkpoint_create(*, org: Organization, reason: str, unless_unchanged: bool = False) -> Checkpoint:
    """Sign the organization's chain head now, linked to its latest checkpoint.

    With `unless_unchanged`, return the latest checkpoint instead when the head has not
    moved since it was signed. Raises keys.SigningUnavailable when Lens cannot sign,
    ValueError for a malformed `reason`.
    """
    if not signatures.REASON.fullmatch(reason):
        raise ValueError(f"a checkpoint reason is a lowercase word ({signatures.REASON.pattern}), not {reason!r}")
    keys.signing_ready()
    with transaction.atomic():
        keys.signing_lock(org_id=org.pk)
        seq, chain_hash = Organization.objects.filter(pk=org.pk).values_list("chain_seq", "chain_hash").get()
        latest = Checkpoint.objects.filter(org=org).select_related("signing_key").order_by("-id").first()
        if unless_unchanged and latest is not None and (latest.seq, latest.chain_hash) == (seq, chain_hash):
            return latest
        # Under the signing lock no rotation runs, so the latest checkpoint's key, if live, is the live key.
        key = latest.signing_key if latest and latest.signing_key.retired_at is None else keys.signing_key_live(org=org)
        checkpoint = Checkpoint(
            org=org,
            seq=seq,
            chain_hash=chain_hash,
            signed_at=timezone.now(),
            signing_key=key,
            # Recomputed, not read from the stored digest: a link to an altered checkpoint fails at that one.
            previous=signatures.checkpoint_digest(checkpoint_wire(latest, org=org)) if latest else signatures.NO_PREVIOUS,
            reason=reason,
        )
        message = signatures.checkpoint_message(checkpoint_wire(checkpoint, org=org, key=key))
        checkpoint.signature = keys.signature_make(key=key, message=message)
        checkpoint.digest = signatures.checkpoint_digest(checkpoint_wire(checkpoint, org=org, key=key))
        checkpoint.save()
        if settings.LENS_CHECKPOINT_PUBLISH_DIR or settings.LENS_CHECKPOINT_PUBLISH_URL:
            transaction.on_commit(partial(_publish_soon, checkpoint.pk))
    return checkpoint


def _publish_soon(checkpoint_id: int) -> None:
    from audit.integrity.tasks import publish_checkpoints  # the task module imports this one

    publish_checkpoints.delay(checkpoint_id=checkpoint_id)


def checkpoint_create_all(*, reason: str = SCHEDULE) -> list[Checkpoint]:
    """Sign the head of every organization with events whose head moved since its last checkpoint."""
    orgs = Organization.objects.filter(chain_seq__gt=0).order_by("pk")
    return [checkpoint_create(org=org, reason=reason, unless_unchanged=True) for org in orgs]


@dataclass
class CheckpointChain:
    """What `checkpoint_chain_check` proved: the checkpoints in order, or the first that is wrong."""

    checkpoints: list[Checkpoint] = field(default_factory=list)
    problem: str = ""
    bad: Checkpoint | None = None


def _label(checkpoint: Checkpoint) -> str:
    return f"the checkpoint signed at {format_timestamp(checkpoint.signed_at)} (seq {checkpoint.seq})"


def checkpoint_chain_check(*, org: Organization, after: Checkpoint | None = None) -> CheckpointChain:
    """Check the organization's checkpoints after `after` (all when None), oldest first: each
    signature verifies with its key, was made while that key was live, links to the one
    before it, and signs a head no lower than the one before it."""
    signing_keys = {key.pk: key for key in SigningKey.objects.filter(org=org)}
    public_keys = {pk: signatures.public_key_from_base64(key.public_key) for pk, key in signing_keys.items()}
    rows = Checkpoint.objects.filter(org=org).order_by("id")
    previous, previous_digest = after, signatures.NO_PREVIOUS
    if after is not None:
        rows = rows.filter(id__gt=after.pk)
        previous_digest = signatures.checkpoint_digest(checkpoint_wire(after, org=org, key=signing_keys[after.signing_key_id]))
    result = CheckpointChain()
    for checkpoint in rows.iterator():
        key = signing_keys.get(checkpoint.signing_key_id)
        if key is None:
            result.problem, result.bad = f"{_label(checkpoint)} names a key that is not the organization's", checkpoint
            return result
        wire = checkpoint_wire(checkpoint, org=org, key=key)
        problem = _problem(checkpoint, wire, key, public_keys[key.pk], previous, previous_digest)
        if problem:
            result.problem, result.bad = problem, checkpoint
            return result
        result.checkpoints.append(checkpoint)
        previous, previous_digest = checkpoint, signatures.checkpoint_digest(wire)
    return result


def _problem(checkpoint, wire, key, public_key, previous, previous_digest) -> str:
    label = _label(checkpoint)
    try:
        message = signatures.checkpoint_message(wire)
    except ValueError as exc:
        return f"{label} is malformed: {exc}"
    if wire["previous"] != previous_digest:
        if previous is None:
            return f"{label} links to an earlier checkpoint that is gone: a checkpoint was deleted"
        return f"{label} does not link to {_label(previous)}: a checkpoint between them was deleted or altered"
    if not signatures.signature_valid(public_key, message, checkpoint.signature):
        return f"{label} does not verify with key {key.key_id}: it was altered or forged"
    if checkpoint.signed_at < key.created_at or (key.retired_at is not None and checkpoint.signed_at > key.retired_at):
        return f"{label} is signed by key {key.key_id}, which was not live then"
    if previous is not None and checkpoint.seq < previous.seq:
        return f"{label} signs a head below {_label(previous)}: the head was moved back"
    return ""
