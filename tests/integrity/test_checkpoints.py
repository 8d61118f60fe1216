"""Signed checkpoints: the exact signed message, the chain of checkpoints, and what breaks it."""

import hashlib

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction

from audit.events.wire import format_timestamp
from audit.integrity import checkpoints, signatures, tasks
from audit.integrity.keys import signing_key_rotate
from audit.models import Checkpoint, Organization
from tests.factories import store_events, wire_event


@pytest.fixture
def events(org):
    return store_events(org, *(wire_event() for _ in range(5)))


def test_a_checkpoint_signs_the_head_in_the_documented_message(org, events):
    checkpoint = checkpoints.checkpoint_create(org=org, reason="manual")
    key = checkpoint.signing_key
    assert (checkpoint.seq, checkpoint.chain_hash) == (5, events[-1].chain_hash)
    # The message exactly as docs/integrity.md states it, built here by hand.
    message = (
        "lens-checkpoint/1\n"
        "org=acme\n"
        "seq=5\n"
        f"chain_hash={events[-1].chain_hash}\n"
        f"signed_at={format_timestamp(checkpoint.signed_at)}\n"
        f"key_id={key.key_id}\n"
        f"previous={'0' * 64}\n"
        "reason=manual\n"
    ).encode()
    assert signatures.checkpoint_message(checkpoints.checkpoint_wire(checkpoint)) == message
    assert checkpoint.digest == hashlib.sha256(message).hexdigest()
    assert signatures.signature_valid(signatures.public_key_from_base64(key.public_key), message, checkpoint.signature)


def test_each_checkpoint_names_the_digest_of_the_one_before(org, events):
    first = checkpoints.checkpoint_create(org=org, reason="manual")
    store_events(org, wire_event())
    second = checkpoints.checkpoint_create(org=org, reason="export")
    assert second.previous == first.digest and second.seq == 6
    assert checkpoints.checkpoint_chain_check(org=org).checkpoints == [first, second]


def test_an_unmoved_head_is_not_signed_again_when_asked_not_to(org, events):
    first = checkpoints.checkpoint_create(org=org, reason="schedule", unless_unchanged=True)
    assert checkpoints.checkpoint_create(org=org, reason="schedule", unless_unchanged=True) == first
    assert checkpoints.checkpoint_create(org=org, reason="export") != first


@pytest.mark.parametrize("reason", ["", "Removal", "two words", "x" * 40, "bad\nline"])
def test_a_reason_is_one_lowercase_word(org, reason):
    with pytest.raises(ValueError, match="lowercase word"):
        checkpoints.checkpoint_create(org=org, reason=reason)


def test_checkpoints_cannot_fork(org, events):
    first = checkpoints.checkpoint_create(org=org, reason="manual")
    checkpoints.checkpoint_create(org=org, reason="manual")
    twin = Checkpoint.objects.get(previous=first.digest)
    twin.pk, twin.digest = None, "f" * 64
    with pytest.raises(IntegrityError), transaction.atomic():
        twin.save()


def _three(org):
    made = []
    for _ in range(3):
        store_events(org, wire_event())
        made.append(checkpoints.checkpoint_create(org=org, reason="schedule"))
    return made


def test_a_deleted_checkpoint_breaks_the_next_link(org, events):
    first, second, third = _three(org)
    Checkpoint.objects.filter(pk=second.pk).delete()
    proved = checkpoints.checkpoint_chain_check(org=org)
    assert proved.checkpoints == [first] and proved.bad == third
    assert "does not link to the checkpoint signed at" in proved.problem and "was deleted" in proved.problem


def test_deleting_the_first_checkpoint_is_seen_too(org, events):
    first, second, _ = _three(org)
    Checkpoint.objects.filter(pk=first.pk).delete()
    proved = checkpoints.checkpoint_chain_check(org=org)
    assert proved.bad == second and "links to an earlier checkpoint that is gone" in proved.problem


def test_an_altered_checkpoint_does_not_verify(org, events):
    _, second, _ = _three(org)
    Checkpoint.objects.filter(pk=second.pk).update(chain_hash="a" * 64)
    proved = checkpoints.checkpoint_chain_check(org=org)
    assert proved.bad.pk == second.pk and "does not verify with key" in proved.problem


def test_a_checkpoint_signed_by_a_retired_key_after_its_retirement_is_refused(org, events):
    first = checkpoints.checkpoint_create(org=org, reason="manual")
    signing_key_rotate(org=org)
    second = checkpoints.checkpoint_create(org=org, reason="manual")
    assert second.signing_key != first.signing_key
    assert checkpoints.checkpoint_chain_check(org=org).problem == ""  # the old key's checkpoint still verifies
    Checkpoint.objects.filter(pk=second.pk).update(signing_key=first.signing_key)
    assert checkpoints.checkpoint_chain_check(org=org).bad.pk == second.pk


def test_a_head_moved_back_between_checkpoints_is_seen(org, events):
    checkpoints.checkpoint_create(org=org, reason="manual")
    Organization.objects.filter(pk=org.pk).update(chain_seq=3, chain_hash=events[2].chain_hash)
    later = checkpoints.checkpoint_create(org=org, reason="manual")
    proved = checkpoints.checkpoint_chain_check(org=org)
    assert proved.bad == later and "signs a head below" in proved.problem and "moved back" in proved.problem


def test_the_hourly_task_signs_every_organization_with_events_whose_head_moved(org, other_org, events):
    tasks.verify_chains.delay()
    assert list(Checkpoint.objects.values_list("org__slug", "seq", "reason")) == [("acme", 5, "schedule")]
    tasks.verify_chains.delay()
    assert Checkpoint.objects.count() == 1  # nothing moved: nothing new to sign
    store_events(org, wire_event())
    tasks.verify_chains.delay()
    assert list(Checkpoint.objects.order_by("id").values_list("seq", flat=True)) == [5, 6]
    assert settings.CELERY_BEAT_SCHEDULE["verify-chains"]["task"] == tasks.verify_chains.name
