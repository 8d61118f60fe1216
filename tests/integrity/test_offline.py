"""Evidence exports (manifest=1) and the standalone offline verifier, run as `python -m audit.verify`."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audit.integrity import offline
from audit.integrity import chain
from audit.models import ApiKey
from tests.factories import store_events, wire_event

ROOT = Path(__file__).resolve().parents[2]
EXPORT = "/api/v1/audit-events/export"


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


def _run(*args, cwd=ROOT, python=sys.executable):
    return subprocess.run(
        [python, "-m", "audit.verify", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _lines(body: bytes):
    return [json.loads(line) for line in body.splitlines()]


def test_an_evidence_export_ends_with_its_manifest(reader, org, events, read_key):
    body = _export(reader, "decision=deny&decision=alert&manifest=1")
    *rows, last = _lines(body)
    manifest = last["manifest"]
    assert [row["seq"] for row in rows] == [8, 6, 5, 3, 2]  # newest first, with gaps
    prefix = ApiKey.objects.get(org=org).prefix
    assert manifest["format"] == "lens-evidence/1" and manifest["org"] == "acme"
    assert manifest["filters"] == {"decision": ["deny", "alert"]}
    assert manifest["rows"] == 5 and manifest["exported_by"] == f"key:{prefix} (test)"
    assert manifest["chain_head"]["seq"] == 8 and manifest["chain_head"]["hash"] == events[-1].chain_hash
    head, _, _ = body.rpartition(b'{"manifest"')
    assert manifest["body_sha256"] == hashlib.sha256(head).hexdigest()
    by_seq = {event.seq: event.chain_hash for event in events}
    for row in rows:
        assert row["prev_chain_hash"] == by_seq.get(row["seq"] - 1, chain.GENESIS_HASH)


def test_a_plain_export_is_unchanged(reader, events):
    rows = _lines(_export(reader, "format=ndjson"))
    assert len(rows) == 8 and "manifest" not in rows[-1] and "prev_chain_hash" not in rows[0]


def test_manifest_needs_ndjson_and_the_value_1(reader, events):
    assert reader.get(f"{EXPORT}?format=csv&manifest=1").status_code == 400
    response = reader.get(f"{EXPORT}?manifest=yes")
    assert response.status_code == 400 and "manifest" in response.json()["errors"]


def test_a_session_export_names_the_user(client, viewer, events):
    client.force_login(viewer)
    assert _lines(_export(client))[-1]["manifest"]["exported_by"] == "user:viewer"


def test_previous_hashes_are_looked_up_per_chunk_not_per_row(reader, org, django_assert_num_queries):
    store_events(org, *(wire_event(decision="deny" if n % 2 else "allow") for n in range(40)))
    _export(reader)  # the key's last-used time is written once, here
    # The key, the access record, the events, one lookup of every seq - 1 for the chunk, the head
    # (with its last event).
    with django_assert_num_queries(5):
        rows = _lines(_export(reader, "decision=deny&manifest=1"))
    assert len(rows) == 21


def test_the_verifier_passes_an_untouched_export(reader, events, tmp_path):
    path = tmp_path / "export.ndjson"
    path.write_bytes(_export(reader, "decision=deny&manifest=1"))
    result = _run(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 4 events;") and "chain head seq 8" in result.stdout


def test_the_verifier_fails_on_an_edited_line_and_names_it(reader, events, tmp_path):
    body = _export(reader, "decision=deny&manifest=1")
    lines = body.splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"decision":"deny"', b'"decision":"allow"')
    path = tmp_path / "edited.ndjson"
    path.write_bytes(b"".join(lines))
    result = _run(path)
    assert result.returncode == 1
    assert "FAILED: first bad line 3" in result.stderr
    assert "line 3 (seq 3," in result.stderr and "does not hash to its chain_hash" in result.stderr
    assert "body's SHA-256" in result.stderr


def test_an_edit_with_a_recomputed_hash_breaks_the_link_and_the_body_hash(reader, events, tmp_path):
    body = _export(reader, "decision=deny&manifest=1")
    rows = body.splitlines(keepends=True)
    record = json.loads(rows[3])  # seq 2; seq 3 (line 3) links to it
    record["reason"] = "nothing happened"
    record["chain_hash"] = chain.next_chain_hash(record["prev_chain_hash"], record)
    rows[3] = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    path = tmp_path / "rehashed.ndjson"
    path.write_bytes(b"".join(rows))
    result = _run(path)
    assert result.returncode == 1
    assert "FAILED: first bad line 4" in result.stderr and "line 3 (seq 3) does not link to line 4 (seq 2)" in result.stderr


def test_a_removed_line_fails_the_count_and_the_body_hash(reader, events, tmp_path):
    rows = _export(reader, "manifest=1").splitlines(keepends=True)
    del rows[4]
    path = tmp_path / "short.ndjson"
    path.write_bytes(b"".join(rows))
    result = _run(path)
    assert result.returncode == 1
    assert "the body has 7 lines, the manifest says 8" in result.stderr and "body's SHA-256" in result.stderr


def test_a_separate_manifest_file(reader, events, tmp_path):
    *rows, manifest = _export(reader).splitlines(keepends=True)
    (tmp_path / "body.ndjson").write_bytes(b"".join(rows))
    (tmp_path / "manifest.json").write_bytes(manifest)
    result = _run(tmp_path / "body.ndjson", "--manifest", tmp_path / "manifest.json")
    assert result.returncode == 0, result.stderr
    assert "OK: 8 events" in result.stdout
    (tmp_path / "body.ndjson").write_bytes(b"".join(rows[:-1]))
    assert _run(tmp_path / "body.ndjson", "--manifest", tmp_path / "manifest.json").returncode == 1


def test_an_unreadable_file_exits_2(tmp_path):
    result = _run(tmp_path / "missing.ndjson")
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_the_verifier_needs_only_the_standard_library(reader, events, tmp_path):
    # Only the verifier, the chain rule and the event's declaration, under an interpreter without Django.
    kit = tmp_path / "kit"
    for name in (
        "audit/__init__.py", "audit/verify.py", "audit/integrity/__init__.py", "audit/integrity/chain.py",
        "audit/integrity/offline.py", "audit/events/__init__.py", "audit/events/fields.py",
    ):
        (kit / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, kit / name)
    python = getattr(sys, "_base_executable", sys.executable)
    (tmp_path / "export.ndjson").write_bytes(_export(reader))
    result = _run(tmp_path / "export.ndjson", cwd=kit, python=python)
    assert result.returncode == 0, result.stderr
    imports = subprocess.run(
        [sys.executable, "-c", "import sys, audit.verify; print('django' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert imports.stdout.strip() == "False"


def test_verify_reports_a_duplicated_seq_and_a_line_past_the_head():
    genesis = chain.GENESIS_HASH
    first = {**wire_event(), "received_at": "2026-11-23T09:00:00.000000Z", "seq": 1, "prev_chain_hash": genesis}
    first["chain_hash"] = chain.next_chain_hash(genesis, first)
    lines = [json.dumps(first).encode() + b"\n"] * 2
    body = b"".join(lines)
    manifest = {"body_sha256": hashlib.sha256(body).hexdigest(), "rows": 2,
                "chain_head": {"seq": 0, "hash": genesis}}
    problems, _, _ = offline.verify(body, json.dumps({"manifest": manifest}).encode())
    messages = [message for _, message in problems.items]
    assert problems.first_line() == 1
    assert any("past the chain head" in message for message in messages)
    assert any("seq 1 already appeared on line 1" in message for message in messages)


def test_a_rehashed_line_whose_successor_is_exported_is_named(reader, events, tmp_path):
    rows = _export(reader).splitlines(keepends=True)  # all 8, newest first: line n holds seq 9 - n
    record = json.loads(rows[2])  # line 3, seq 6
    record["actor"] = "mallory@company.com"
    record["chain_hash"] = chain.next_chain_hash(record["prev_chain_hash"], record)
    rows[2] = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    path = tmp_path / "rehashed.ndjson"
    path.write_bytes(b"".join(rows))
    result = _run(path)
    assert result.returncode == 1
    assert "FAILED: first bad line 3" in result.stderr and "line 2 (seq 7) does not link to line 3 (seq 6)" in result.stderr
