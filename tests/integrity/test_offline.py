"""Signed evidence exports (manifest=1) through the real endpoint, checked by the real offline
verifier (`python -m audit.verify`, a subprocess) against each way an attacker holding the
file could tamper with it."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cryptography
import pytest
from django.core.management import call_command
from django.db import connection

from audit.integrity import chain, offline, signatures
from audit.integrity.offline_signed import line_tag
from audit.models import ApiKey, Checkpoint
from tests.factories import store_events, wire_event

ROOT = Path(__file__).resolve().parents[2]
EXPORT = "/api/v1/audit-events/export"
KEYS = "/api/v1/integrity/keys"


@pytest.fixture
def events(org):
    decisions = ["allow", "deny", "deny", "allow", "alert", "deny", "allow", "deny"]
    return store_events(org, *(wire_event(decision=decision) for decision in decisions))


@pytest.fixture
def reader(api_client, read_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    return api_client


def _export(client, query="manifest=1") -> bytes:
    response = client.get(f"{EXPORT}?{query}")
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def _keys_file(client, tmp_path) -> Path:
    path = tmp_path / "keys.json"
    path.write_bytes(client.get(KEYS).content)
    return path


def _run(*args, cwd=ROOT, python=(sys.executable,), env=None):
    return subprocess.run(
        [*python, "-m", "audit.verify", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60, env=env
    )


def _verify(tmp_path, data: bytes, keys: Path, *extra, name="export.ndjson"):
    path = tmp_path / name
    path.write_bytes(data)
    return _run(path, "--public-key", keys, *extra)


def _parts(body: bytes):
    """(event lines, manifest dict, signature line) of an export."""
    *rows, manifest_line, signature_line = body.splitlines(keepends=True)
    return rows, json.loads(manifest_line)["manifest"], signature_line


def _reassemble(rows, manifest, signature_line, *, recompute=True) -> bytes:
    """What an attacker holding the file does: recompute rows and the body digest (and,
    with recompute="all", the line tags too), keeping the now-stale signature."""
    if recompute:
        body = b"".join(rows)
        manifest = {**manifest, "rows": len(rows), "body_sha256": hashlib.sha256(body).hexdigest()}
        if recompute == "all":
            manifest["line_tags"] = "".join(line_tag(row) for row in rows)
    line = json.dumps({"manifest": manifest}, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    return b"".join(rows) + line + signature_line


def _rehash(row: bytes, **changes) -> bytes:
    record = {**json.loads(row), **changes}
    record["chain_hash"] = chain.next_chain_hash(record["prev_chain_hash"], record)
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def test_an_evidence_export_ends_with_its_signed_manifest(reader, org, events, tmp_path):
    body = _export(reader, "decision=deny&decision=alert&manifest=1")
    rows, manifest, signature_line = _parts(body)
    records = [json.loads(row) for row in rows]
    assert [row["seq"] for row in records] == [8, 6, 5, 3, 2]  # newest first, with gaps
    prefix = ApiKey.objects.get(org=org).prefix
    assert manifest["format"] == "lens-evidence/2" and manifest["org"] == "acme"
    assert manifest["filters"] == {"decision": ["deny", "alert"]}
    assert manifest["rows"] == 5 and manifest["exported_by"] == f"key:{prefix} (test)"
    assert manifest["body_sha256"] == hashlib.sha256(b"".join(rows)).hexdigest()
    assert manifest["line_tags"] == "".join(hashlib.sha256(row).hexdigest()[:12] for row in rows)
    # The checkpoint was signed for this export, of the head as it was after the body was read.
    checkpoint = Checkpoint.objects.get(org=org)
    assert checkpoint.reason == "export" and (checkpoint.seq, checkpoint.chain_hash) == (8, events[-1].chain_hash)
    assert manifest["checkpoint"]["seq"] == 8 and manifest["checkpoint"]["signature"] == checkpoint.signature
    # The signature covers the manifest line's exact bytes, with the organization's live key.
    (key,) = reader.get(KEYS).json()
    signature = json.loads(signature_line)["signature"]
    assert signature["key_id"] == manifest["key_id"] == key["key_id"] and signature["algorithm"] == "ed25519"
    public = signatures.public_key_from_base64(key["public_key"])
    assert signatures.signature_valid(public, body.splitlines()[-2], signature["value"])
    by_seq = {event.seq: event.chain_hash for event in events}
    for row in records:
        assert row["prev_chain_hash"] == by_seq.get(row["seq"] - 1, chain.GENESIS_HASH)


def test_the_verifier_passes_an_untouched_export(reader, events, tmp_path):
    result = _verify(tmp_path, _export(reader, "decision=deny&manifest=1"), _keys_file(reader, tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 4 events; manifest signed by key") and "signature verified" in result.stdout
    assert "checkpoint seq 8" in result.stdout


def test_the_public_key_may_be_given_as_base64_or_pem(reader, events, tmp_path):
    data = _export(reader)
    public = reader.get(KEYS).json()[0]["public_key"]
    assert _verify(tmp_path, data, public).returncode == 0
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pem = signatures.public_key_from_base64(public).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "key.pem").write_bytes(pem)
    assert _verify(tmp_path, data, tmp_path / "key.pem").returncode == 0


def test_without_a_public_key_nothing_is_proven(reader, events, tmp_path):
    (tmp_path / "export.ndjson").write_bytes(_export(reader))
    result = _run(tmp_path / "export.ndjson")
    assert result.returncode == 1 and "no public key given (--public-key)" in result.stderr


def test_a_plain_export_is_unchanged(reader, events):
    rows = [json.loads(line) for line in _export(reader, "format=ndjson").splitlines()]
    assert len(rows) == 8 and "manifest" not in rows[-1] and "prev_chain_hash" not in rows[0]
    assert not Checkpoint.objects.exists()


def test_manifest_needs_ndjson_and_the_value_1(reader, events):
    assert reader.get(f"{EXPORT}?format=csv&manifest=1").status_code == 400
    response = reader.get(f"{EXPORT}?manifest=yes")
    assert response.status_code == 400 and "manifest" in response.json()["errors"]


def test_no_signing_secret_is_a_503_before_any_line(reader, events, settings):
    settings.LENS_SIGNING_KEY_SECRET = ""
    response = reader.get(f"{EXPORT}?manifest=1")
    assert response.status_code == 503 and "LENS_SIGNING_KEY_SECRET" in response.json()["detail"]


def test_a_session_export_names_the_user(client, viewer, events):
    client.force_login(viewer)
    assert _parts(_export(client))[1]["exported_by"] == "user:viewer"


def test_previous_hashes_are_looked_up_per_chunk_not_per_row(reader, org, django_assert_num_queries):
    store_events(org, *(wire_event(decision="deny" if n % 2 else "allow") for n in range(40)))
    _export(reader)  # the key's last-used time is written once here, and the signing key made
    # The key, the access record, the events, one lookup of every seq - 1 for the chunk; then the
    # checkpoint, in a transaction (a savepoint here): the head, the latest checkpoint with its
    # key (the live one), the insert; on PostgreSQL the signing lock too.
    with django_assert_num_queries(10 if connection.vendor == "postgresql" else 9):
        rows, _, _ = _parts(_export(reader, "decision=deny&manifest=1"))
    assert len(rows) == 20


# --- tampering: every case exits 1 and names the line ----------------------------------------


def test_a_removed_line_is_named_even_with_counts_and_digest_recomputed(reader, events, tmp_path):
    rows, manifest, signature_line = _parts(_export(reader))  # 8 lines, newest first: line n holds seq 9 - n
    del rows[3]  # seq 5
    result = _verify(tmp_path, _reassemble(rows, manifest, signature_line), _keys_file(reader, tmp_path))
    assert result.returncode == 1
    assert "the manifest's signature does not verify" in result.stderr
    assert "the signed line 4 is missing: removed (after line 3)" in result.stderr
    assert "FAILED: first bad line 4" in result.stderr


def test_a_forged_line_with_a_valid_chain_hash_is_named(reader, events, tmp_path):
    rows, manifest, signature_line = _parts(_export(reader, "decision=deny&manifest=1"))
    forged = _rehash(rows[1], id="forged-1", seq=4, actor="mallory@company.com")  # a seq the filter left out
    rows.insert(2, forged)
    result = _verify(tmp_path, _reassemble(rows, manifest, signature_line), _keys_file(reader, tmp_path))
    assert result.returncode == 1
    assert "line 3 (seq 4) was added: the manifest signed no such line" in result.stderr
    assert "FAILED: first bad line 3" in result.stderr


def test_reordered_lines_are_named(reader, events, tmp_path):
    rows, manifest, signature_line = _parts(_export(reader, "decision=deny&manifest=1"))
    rows[0], rows[2] = rows[2], rows[0]
    result = _verify(tmp_path, _reassemble(rows, manifest, signature_line), _keys_file(reader, tmp_path))
    assert result.returncode == 1
    assert "is out of place: the manifest signed it as line" in result.stderr
    assert "FAILED: first bad line 1" in result.stderr


def test_a_changed_line_with_its_hash_recomputed_is_named(reader, events, tmp_path):
    rows, manifest, signature_line = _parts(_export(reader, "decision=deny&manifest=1"))  # seqs 8, 6, 3, 2
    rows[1] = _rehash(rows[1], reason="nothing happened")  # seq 6: no neighbour exported to link to
    result = _verify(tmp_path, _reassemble(rows, manifest, signature_line), _keys_file(reader, tmp_path))
    assert result.returncode == 1
    assert "line 2 (seq 6) was changed: it is not the line the manifest signed there (line 2)" in result.stderr


def test_a_changed_line_without_a_new_hash_fails_its_own_hash(reader, events, tmp_path):
    rows, manifest, signature_line = _parts(_export(reader, "decision=deny&manifest=1"))
    rows[2] = rows[2].replace(b'"decision":"deny"', b'"decision":"allow"')
    result = _verify(tmp_path, _reassemble(rows, manifest, signature_line, recompute=False), _keys_file(reader, tmp_path))
    assert result.returncode == 1 and "FAILED: first bad line 3" in result.stderr
    assert "line 3 (seq 3," in result.stderr and "does not hash to its chain_hash" in result.stderr
    assert "body's SHA-256" in result.stderr


def test_an_edit_whose_neighbour_is_exported_breaks_the_link(reader, events, tmp_path):
    rows, manifest, signature_line = _parts(_export(reader))  # all 8, newest first
    rows[2] = _rehash(rows[2], actor="mallory@company.com")  # line 3, seq 6
    result = _verify(tmp_path, _reassemble(rows, manifest, signature_line), _keys_file(reader, tmp_path))
    assert result.returncode == 1 and "FAILED: first bad line 3" in result.stderr
    assert "line 2 (seq 7) does not link to line 3 (seq 6)" in result.stderr


def test_everything_recomputed_still_fails_on_the_signature(reader, events, tmp_path):
    rows, manifest, signature_line = _parts(_export(reader))
    del rows[0]  # the newest event: nothing in the chain points at it
    result = _verify(tmp_path, _reassemble(rows, manifest, signature_line, recompute="all"), _keys_file(reader, tmp_path))
    assert result.returncode == 1
    assert "the manifest's signature does not verify with key" in result.stderr
    assert "the manifest was altered after it was signed" in result.stderr
    # The checkpoint inside is signed on its own: it still says the head was seq 8.
    assert "the checkpoint's head (seq 8)" not in result.stderr


def test_a_removed_signature_line_fails(reader, events, tmp_path):
    rows, manifest, _ = _parts(_export(reader))
    result = _verify(tmp_path, _reassemble(rows, manifest, b"", recompute=False), _keys_file(reader, tmp_path))
    assert result.returncode == 1


def test_the_wrong_key_fails(reader, events, other_org, tmp_path):
    from audit.integrity.keys import signing_key_live

    other = signing_key_live(org=other_org)
    result = _verify(tmp_path, _export(reader), other.public_key)
    assert result.returncode == 1
    assert f"does not verify with key {other.key_id}" in result.stderr and "the manifest names key" in result.stderr


def test_after_a_rotation_old_exports_still_verify_and_new_ones_need_the_new_key(reader, org, events, tmp_path):
    before = _export(reader)
    old_key = reader.get(KEYS).json()[0]
    call_command("rotate_signing_key", "--org", "acme", stdout=open("/dev/null", "w"))
    after = _export(reader)
    keys = reader.get(KEYS).json()
    assert [key["retired_at"] is None for key in keys] == [True, False] and keys[1]["key_id"] == old_key["key_id"]
    all_keys = _keys_file(reader, tmp_path)
    assert _verify(tmp_path, before, all_keys).returncode == 0
    assert _verify(tmp_path, before, old_key["public_key"]).returncode == 0
    assert _verify(tmp_path, after, all_keys).returncode == 0
    stale = _verify(tmp_path, after, old_key["public_key"])
    assert stale.returncode == 1 and f"names key {keys[0]['key_id']}" in stale.stderr


def test_a_line_past_the_checkpoint_is_named():
    genesis = chain.GENESIS_HASH
    first = {**wire_event(), "received_at": "2026-11-23T09:00:00.000000Z", "seq": 1, "prev_chain_hash": genesis}
    first["chain_hash"] = chain.next_chain_hash(genesis, first)
    body = b"".join([json.dumps(first).encode() + b"\n"] * 2)
    checkpoint = {"org": "acme", "seq": 0, "chain_hash": genesis, "signed_at": "2026-11-23T09:00:00.000000Z",
                  "key_id": "0" * 16, "previous": genesis, "reason": "export", "signature": ""}
    manifest = {"org": "acme", "body_sha256": hashlib.sha256(body).hexdigest(), "rows": 2, "checkpoint": checkpoint}
    problems, _, _ = offline.verify(body, json.dumps({"manifest": manifest}).encode())
    messages = [message for _, message in problems.items]
    assert problems.first_line() == 1
    assert any("past the checkpoint the export was cut against" in message for message in messages)
    assert any("seq 1 already appeared on line 1" in message for message in messages)


def test_a_separate_manifest_file(reader, events, tmp_path):
    *rows, manifest, signature = _export(reader).splitlines(keepends=True)
    (tmp_path / "body.ndjson").write_bytes(b"".join(rows))
    (tmp_path / "manifest.ndjson").write_bytes(manifest + signature)
    keys = _keys_file(reader, tmp_path)
    result = _run(tmp_path / "body.ndjson", "--manifest", tmp_path / "manifest.ndjson", "--public-key", keys)
    assert result.returncode == 0, result.stderr
    (tmp_path / "body.ndjson").write_bytes(b"".join(rows[:-1]))
    assert _run(tmp_path / "body.ndjson", "--manifest", tmp_path / "manifest.ndjson", "--public-key", keys).returncode == 1


def test_an_unreadable_file_or_key_exits_2(tmp_path):
    result = _run(tmp_path / "missing.ndjson")
    assert result.returncode == 2 and "cannot read" in result.stderr
    (tmp_path / "export.ndjson").write_bytes(b"")
    result = _run(tmp_path / "export.ndjson", "--public-key", "not-a-key")
    assert result.returncode == 2 and "cannot read the public key" in result.stderr


def test_the_verifier_needs_only_the_standard_library_and_cryptography(reader, events, tmp_path):
    # The verifier's files alone, run by an interpreter that sees no site-packages (-S) but
    # `cryptography` and what it loads (cffi): no Django anywhere on its path.
    kit, deps = tmp_path / "kit", tmp_path / "deps"
    for name in (
        "audit/__init__.py", "audit/verify.py", "audit/integrity/__init__.py", "audit/integrity/chain.py",
        "audit/integrity/offline.py", "audit/integrity/offline_signed.py", "audit/integrity/signatures.py",
        "audit/events/__init__.py", "audit/events/fields.py",
    ):
        (kit / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, kit / name)
    deps.mkdir()
    site = Path(cryptography.__file__).resolve().parents[1]
    for pattern in ("cryptography", "cffi", "_cffi_backend*", "pycparser"):
        for path in site.glob(pattern):
            (deps / path.name).symlink_to(path)
    env = {"PYTHONPATH": f"{kit}:{deps}", "PATH": "/usr/bin:/bin"}
    python = (sys.executable, "-S")
    no_django = subprocess.run([*python, "-c", "import django"], env=env, capture_output=True, text=True, timeout=60)
    assert no_django.returncode == 1 and "No module named 'django'" in no_django.stderr
    (tmp_path / "export.ndjson").write_bytes(_export(reader))
    result = _run(tmp_path / "export.ndjson", "--public-key", _keys_file(reader, tmp_path), cwd=kit, python=python, env=env)
    assert result.returncode == 0, result.stderr


# --- against the checkpoints published where the customer keeps them ----------------------------


def test_an_export_agrees_with_the_published_checkpoints(reader, org, events, settings, tmp_path):
    from audit.integrity.checkpoints import checkpoint_create
    from audit.integrity.publication import checkpoints_publish_pending

    settings.LENS_CHECKPOINT_PUBLISH_DIR = str(tmp_path / "published")
    checkpoint_create(org=org, reason="schedule")
    data = _export(reader)
    assert checkpoints_publish_pending() == 2
    result = _verify(tmp_path, data, _keys_file(reader, tmp_path), "--published", tmp_path / "published")
    assert result.returncode == 0, result.stderr
    assert "agrees with 2 published checkpoints" in result.stdout


def test_a_head_moved_back_is_caught_against_the_published_checkpoints(reader, org, events, settings, tmp_path):
    from audit.integrity.checkpoints import checkpoint_create
    from audit.integrity.publication import checkpoints_publish_pending
    from audit.models import AuditEvent, Organization

    settings.LENS_CHECKPOINT_PUBLISH_DIR = str(tmp_path / "published")
    checkpoint_create(org=org, reason="schedule")  # seq 8, published
    assert checkpoints_publish_pending() == 1
    # The operator removes the last two events and moves the head back before exporting.
    AuditEvent.objects.filter(org=org, seq__gte=7).delete()
    Organization.objects.filter(pk=org.pk).update(chain_seq=6, chain_hash=events[5].chain_hash)
    data = _export(reader)
    keys = _keys_file(reader, tmp_path)
    assert _verify(tmp_path, data, keys).returncode == 0  # the file alone is consistent
    result = _verify(tmp_path, data, keys, "--published", tmp_path / "published")
    assert result.returncode == 1
    assert "signs seq 8 with another chain than the export's checkpoint (seq 6" in result.stderr


def test_a_line_contradicting_a_published_checkpoint_is_named(reader, org, events, settings, tmp_path):
    from audit.integrity.checkpoints import checkpoint_create
    from audit.integrity.publication import checkpoints_publish_pending

    settings.LENS_CHECKPOINT_PUBLISH_DIR = str(tmp_path / "published")
    checkpoint_create(org=org, reason="schedule")
    assert checkpoints_publish_pending() == 1
    copy = next((tmp_path / "published").iterdir())
    forged = {**json.loads(copy.read_bytes()), "chain_hash": "a" * 64}
    copy.write_text(json.dumps(forged))
    result = _verify(tmp_path, _export(reader), _keys_file(reader, tmp_path), "--published", tmp_path / "published")
    assert result.returncode == 1 and "does not verify with key" in result.stderr
    assert "line 1 (seq 8) does not carry the chain hash" in result.stderr
