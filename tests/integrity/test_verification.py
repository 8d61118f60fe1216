"""verify_chain names exactly the event that was tampered with, directly in the database."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from audit.integrity import chain, checkpoints, verification
from audit.integrity.publication import checkpoints_publish_pending
from audit.models import AuditEvent, ChainVerification, Checkpoint, Organization
from audit.events.wire import event_wire
from tests.factories import store_events, wire_event


@pytest.fixture
def events(org):
    # Two batches, so the chain spans ingests.
    first = store_events(org, *(wire_event() for _ in range(5)))
    return first + store_events(org, *(wire_event() for _ in range(5)))


def _verify(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_chain", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + err.getvalue() + str(exc)
    return 0, out.getvalue() + err.getvalue()


def _last():
    return ChainVerification.objects.latest("id")


def test_an_untouched_chain_verifies_and_is_recorded(org, events):
    code, output = _verify("--org", org.slug)
    assert code == 0
    assert "acme: OK" in output and "seq 1–10, 10 events recomputed" in output
    result = _last()
    assert (result.ok, result.from_seq, result.verified_through, result.events_checked) == (True, 1, 10, 10)
    assert result.last_hash == events[-1].chain_hash and result.kind == ""


def test_a_changed_field_names_that_event(org, events):
    AuditEvent.objects.filter(pk=events[3].pk).update(decision="deny")
    code, output = _verify("--org", org.slug)
    assert code == 1
    assert f"seq 4 (id {events[3].event_id}) was changed" in output
    assert "kind=changed seq=4" in output
    result = _last()
    assert (result.ok, result.kind, result.first_bad_seq, result.first_bad_event_id) == (False, "changed", 4, events[3].event_id)
    assert result.verified_through == 3 and result.last_hash == ""


def test_a_change_with_its_content_hash_rewritten_still_names_that_event(org, events):
    target = events[6]
    forged = {**event_wire(target), "arguments": {"repo": "acme/other"}}
    AuditEvent.objects.filter(pk=target.pk).update(arguments=forged["arguments"], content_hash=chain.content_hash(forged))
    code, output = _verify("--org", org.slug)
    assert code == 1 and f"seq 7 (id {target.event_id}) was changed" in output


def test_a_change_hidden_by_recomputing_its_chain_hash_names_that_event_not_the_next(org, events):
    target = events[2]
    record = {**event_wire(target), "reason": "nothing to see"}
    AuditEvent.objects.filter(pk=target.pk).update(
        reason="nothing to see", chain_hash=chain.next_chain_hash(events[1].chain_hash, record)
    )
    code, output = _verify("--org", org.slug)
    assert code == 1
    assert f"seq 3 (id {target.event_id}) was changed and its chain hash recomputed" in output
    assert _last().first_bad_seq == 3


def test_a_deleted_event_is_named_by_its_seq(org, events):
    AuditEvent.objects.filter(pk=events[4].pk).delete()
    code, output = _verify("--org", org.slug)
    assert code == 1
    assert "seq 5 missing: removed" in output and f"next stored event is seq 6, id {events[5].event_id}" in output
    result = _last()
    assert (result.kind, result.first_bad_seq, result.first_bad_event_id, result.verified_through) == ("removed", 5, None, 4)


def test_deleting_the_last_events_is_caught_by_the_head(org, events):
    AuditEvent.objects.filter(org=org, seq__gte=9).delete()
    code, output = _verify("--org", org.slug)
    assert code == 1 and "seqs 9–10 missing: removed from the end" in output
    assert (_last().kind, _last().first_bad_seq) == ("removed", 9)


def test_a_deletion_hidden_by_renumbering_is_named(org, events):
    AuditEvent.objects.filter(pk=events[4].pk).delete()
    # Close the gap: move seq 6.. down by one (via a free range, for the unique constraint).
    for row in AuditEvent.objects.filter(org=org, seq__gt=5).order_by("seq"):
        AuditEvent.objects.filter(pk=row.pk).update(seq=row.seq - 1)
    Organization.objects.filter(pk=org.pk).update(chain_seq=9)
    code, output = _verify("--org", org.slug)
    assert code == 1
    assert f"the event at seq 5 was removed and later events renumbered (id {events[5].event_id} was seq 6)" in output
    assert (_last().kind, _last().first_bad_seq) == ("removed", 5)


def _forge(org, *, seq, chain_hash="f" * 64, **overrides):
    template = AuditEvent.objects.filter(org=org).order_by("seq").first()
    template.pk = None
    template.event_id = overrides.pop("event_id", "forged-1")
    template.seq = seq
    template.chain_hash = chain_hash
    for name, value in overrides.items():
        setattr(template, name, value)
    template.save()
    return template


def test_a_forged_event_at_the_end_is_named(org, events):
    forged = _forge(org, seq=11)
    code, output = _verify("--org", org.slug)
    assert code == 1
    assert "seq 11 (id forged-1) is beyond the chain head (seq 10): inserted" in output
    assert (_last().kind, _last().first_bad_seq, _last().first_bad_event_id) == ("inserted", 11, forged.event_id)


def test_a_forged_event_with_a_valid_hash_at_the_end_is_still_caught_by_the_head(org, events):
    forged = _forge(org, seq=11, event_id="forged-2")
    record = event_wire(forged)
    AuditEvent.objects.filter(pk=forged.pk).update(chain_hash=chain.next_chain_hash(events[-1].chain_hash, record))
    code, output = _verify("--org", org.slug)
    assert code == 1 and "seq 11 (id forged-2) is beyond the chain head" in output


def test_a_forged_event_in_the_middle_is_named(org, events):
    # Make room at seq 4 by renumbering 4.. upwards (through a free range, for the unique constraint).
    AuditEvent.objects.filter(org=org, seq__gte=4).update(seq=F("seq") + 1000)
    for row in AuditEvent.objects.filter(org=org, seq__gte=1000).order_by("seq"):
        AuditEvent.objects.filter(pk=row.pk).update(seq=row.seq - 1000 + 1)
    Organization.objects.filter(pk=org.pk).update(chain_seq=11)
    _forge(org, seq=4, event_id="forged-mid", decision="deny")
    code, output = _verify("--org", org.slug)
    assert code == 1
    assert "seq 4 (id forged-mid) was inserted" in output
    assert (_last().kind, _last().first_bad_seq, _last().first_bad_event_id) == ("inserted", 4, "forged-mid")


def test_a_forged_replacement_for_a_deleted_event_is_named(org, events):
    AuditEvent.objects.filter(pk=events[5].pk).delete()
    _forge(org, seq=6, event_id="forged-6")
    code, output = _verify("--org", org.slug)
    assert code == 1 and "seq 6 (id forged-6) is forged" in output
    assert (_last().kind, _last().first_bad_seq) == ("inserted", 6)


def test_an_altered_head_is_reported(org, events):
    Organization.objects.filter(pk=org.pk).update(chain_hash="0" * 64)
    code, output = _verify("--org", org.slug)
    assert code == 1 and "head (seq 10" in output and "the head was altered" in output
    assert (_last().kind, _last().first_bad_seq) == ("head", 10)


def test_a_rewritten_chain_is_caught_by_an_earlier_checkpoint(org, events):
    assert _verify("--org", org.slug)[0] == 0
    # Rewrite event 2 and recompute every hash after it, and the head: consistent, but not what was proven.
    AuditEvent.objects.filter(pk=events[1].pk).update(actor="mallory@company.com")
    previous = events[0].chain_hash
    for row in AuditEvent.objects.filter(org=org).order_by("seq")[1:]:
        previous = chain.next_chain_hash(previous, event_wire(row))
        AuditEvent.objects.filter(pk=row.pk).update(chain_hash=previous)
    Organization.objects.filter(pk=org.pk).update(chain_hash=previous)
    code, output = _verify("--org", org.slug)
    assert code == 1
    assert f"seq 10 (id {events[9].event_id})" in output and "earlier verification proved" in output


def test_since_starts_at_a_seq_anchored_on_the_stored_hash_before_it(org, events):
    AuditEvent.objects.filter(pk=events[1].pk).update(decision="alert")  # before the range: not looked at
    code, output = _verify("--org", org.slug, "--since", "6")
    assert code == 0 and "seq 6–10, 5 events recomputed" in output
    assert (_last().from_seq, _last().verified_through) == (6, 10)
    AuditEvent.objects.filter(pk=events[7].pk).update(decision="alert")
    code, output = _verify("--org", org.slug, "--since", "6")
    assert code == 1 and f"seq 8 (id {events[7].event_id}) was changed" in output


def test_since_a_time_starts_at_the_first_event_received_then(org, events):
    later = store_events(org, wire_event(), wire_event())
    since = later[0].received_at.isoformat()
    code, output = _verify("--org", org.slug, "--since", since)
    assert code == 0 and "seq 11–12, 2 events recomputed" in output


def test_since_with_a_missing_anchor_reports_the_removal(org, events):
    AuditEvent.objects.filter(pk=events[4].pk).delete()
    code, output = _verify("--org", org.slug, "--since", "6")
    assert code == 1 and "seq 5 (the anchor before seq 6) is missing: removed" in output


def test_a_bad_since_and_an_unknown_org_are_clear_errors(org, events):
    with pytest.raises(CommandError, match="sequence number or an RFC 3339 time"):
        call_command("verify_chain", "--org", org.slug, "--since", "yesterday")
    with pytest.raises(CommandError, match="no organization 'nope'"):
        call_command("verify_chain", "--org", "nope")


def test_all_verifies_every_organization_and_fails_if_one_is_broken(org, other_org, events):
    (other,) = store_events(other_org, wire_event())
    code, output = _verify("--all")
    assert code == 0 and "acme: OK" in output and "globex: OK" in output
    AuditEvent.objects.filter(pk=other.pk).update(slug="tampered")
    code, output = _verify("--all")
    assert code == 1 and "acme: OK" in output and "globex: BROKEN" in output and "broken for globex" in output


def test_tampering_in_another_organization_does_not_break_this_one(org, other_org, events):
    (other,) = store_events(other_org, wire_event())
    AuditEvent.objects.filter(pk=other.pk).delete()
    assert _verify("--org", org.slug)[0] == 0


def test_the_command_line_exits_1_and_names_the_event(org, events, capsys):
    from django.core.management import ManagementUtility

    AuditEvent.objects.filter(pk=events[8].pk).update(tool="delete_repo")
    with pytest.raises(SystemExit) as exit_info:
        ManagementUtility(["manage.py", "verify_chain", "--org", org.slug]).execute()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"seq 9 (id {events[8].event_id}) was changed" in err and "CommandError: hash chain broken for acme" in err


def test_since_past_the_head_has_nothing_to_verify(org, events):
    code, output = _verify("--org", org.slug, "--since", "50")
    assert code == 0 and "nothing to verify from seq 11 (head is seq 10)" in output


def test_cutting_off_the_end_and_moving_the_head_back_is_caught_by_an_earlier_run(org, events):
    assert _verify("--org", org.slug)[0] == 0
    AuditEvent.objects.filter(org=org, seq__gte=9).delete()
    Organization.objects.filter(pk=org.pk).update(chain_seq=8, chain_hash=events[7].chain_hash)
    code, output = _verify("--org", org.slug)
    assert code == 1
    assert "the chain ends at seq 8, but an earlier verification proved it through seq 10" in output
    assert (_last().kind, _last().first_bad_seq) == ("removed", 9)


# --- signed checkpoints as anchors; incremental runs -------------------------------------------

def _rewrite_from(org, events, index, **changes):
    """Change event `index` and recompute every later hash and the head: a consistent chain."""
    AuditEvent.objects.filter(pk=events[index].pk).update(**changes)
    previous = events[index - 1].chain_hash
    for row in AuditEvent.objects.filter(org=org, seq__gt=index).order_by("seq"):
        previous = chain.next_chain_hash(previous, event_wire(row))
        AuditEvent.objects.filter(pk=row.pk).update(chain_hash=previous)
    Organization.objects.filter(pk=org.pk).update(chain_hash=previous)


def test_the_cycle_starts_from_the_last_verified_checkpoint_between_full_passes(org, events):
    first = verification.chain_verification_cycle(org=org)
    assert (first.from_seq, first.events_checked, first.ok) == (1, 10, True)  # no full pass yet: a full one
    proved = Checkpoint.objects.get(org=org)
    assert first.checkpoint_digest == proved.digest and proved.seq == 10
    store_events(org, wire_event(), wire_event())
    AuditEvent.objects.filter(pk=events[2].pk).update(actor="mallory@company.com")  # below the checkpoint
    second = verification.chain_verification_cycle(org=org)
    assert (second.from_seq, second.verified_through, second.events_checked, second.ok) == (11, 12, 2, True)
    assert "from the checkpoint signed at" in second.message
    assert second.checkpoint_digest == Checkpoint.objects.latest("id").digest


def test_a_full_pass_comes_when_the_last_is_older_than_the_setting(org, events, settings):
    verification.chain_verification_cycle(org=org)
    AuditEvent.objects.filter(pk=events[2].pk).update(actor="mallory@company.com")
    settings.LENS_VERIFY_FULL_EVERY = 0
    run = verification.chain_verification_cycle(org=org)
    assert (run.from_seq, run.ok, run.kind, run.first_bad_seq) == (1, False, "changed", 3)


def test_events_removed_after_the_last_verification_with_the_head_moved_back_are_caught(org, events):
    assert _verify("--org", org.slug)[0] == 0
    later = store_events(org, wire_event(), wire_event(), wire_event())  # seqs 11-13, never verified
    checkpoints.checkpoint_create(org=org, reason="export")  # ...but signed into a checkpoint
    AuditEvent.objects.filter(org=org, seq__gte=12).delete()
    Organization.objects.filter(pk=org.pk).update(chain_seq=11, chain_hash=later[0].chain_hash)
    code, output = _verify("--org", org.slug, "--incremental")
    assert code == 1
    assert "the chain ends at seq 11, but the checkpoint signed at" in output and "signs it through seq 13" in output
    assert (_last().kind, _last().first_bad_seq) == ("removed", 12)


def test_a_head_moved_back_over_stored_events_is_named(org, events):
    checkpoints.checkpoint_create(org=org, reason="schedule")
    Organization.objects.filter(pk=org.pk).update(chain_seq=8, chain_hash=events[7].chain_hash)
    code, output = _verify("--org", org.slug)
    assert code == 1 and "the organization's head was moved back to seq 8" in output
    assert "signs the chain through seq 10" in output and (_last().kind, _last().first_bad_seq) == ("head", 8)


def test_a_rewritten_chain_is_caught_by_a_signed_checkpoint(org, events):
    checkpoints.checkpoint_create(org=org, reason="schedule")
    _rewrite_from(org, events, 3, actor="mallory@company.com")
    code, output = _verify("--org", org.slug)
    assert code == 1 and "seq 10" in output and "but the checkpoint signed at" in output
    assert "the chain up to here was rewritten" in output


def test_a_deleted_checkpoint_fails_verification(org, events):
    made = []
    for _ in range(3):
        store_events(org, wire_event())
        made.append(checkpoints.checkpoint_create(org=org, reason="schedule"))
    Checkpoint.objects.filter(pk=made[1].pk).delete()
    code, output = _verify("--org", org.slug)
    assert code == 1 and "a checkpoint between them was deleted" in output
    assert (_last().kind, _last().first_bad_seq) == ("checkpoint", made[2].seq)


def test_deleting_the_last_verified_checkpoint_fails_the_next_incremental_run(org, events):
    verification.chain_verification_cycle(org=org)
    Checkpoint.objects.all().delete()
    code, output = _verify("--org", org.slug, "--incremental")
    assert code == 1 and "proved is gone or altered: a checkpoint was deleted" in output
    assert _last().kind == "checkpoint"


def test_a_full_rewrite_of_the_database_is_caught_against_the_published_copies(org, events, settings, tmp_path):
    settings.LENS_CHECKPOINT_PUBLISH_DIR = str(tmp_path / "{org}")
    checkpoints.checkpoint_create(org=org, reason="schedule")
    assert checkpoints_publish_pending() == 1
    # Whoever holds the database and the signing secret rewrites everything, checkpoints included.
    _rewrite_from(org, events, 3, actor="mallory@company.com")
    Checkpoint.objects.all().delete()
    checkpoints.checkpoint_create(org=org, reason="schedule")
    assert _verify("--org", org.slug)[0] == 0  # consistent in itself
    code, output = _verify("--org", org.slug, "--published", str(tmp_path / "{org}"))
    assert code == 1 and "(seq 10) is not in the database: its checkpoints were deleted or rewritten" in output


def test_published_copies_that_agree_pass(org, events, settings, tmp_path):
    settings.LENS_CHECKPOINT_PUBLISH_DIR = str(tmp_path)
    checkpoints.checkpoint_create(org=org, reason="schedule")
    store_events(org, wire_event())
    checkpoints.checkpoint_create(org=org, reason="export")
    assert checkpoints_publish_pending() == 2
    code, output = _verify("--org", org.slug, "--published", str(tmp_path))
    assert code == 0, output
