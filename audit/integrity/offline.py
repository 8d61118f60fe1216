"""Offline verifier for Lens evidence exports: the standard library and `cryptography` only
(plus audit/integrity/chain.py, signatures.py and offline_signed.py; no Django).

    python -m audit.verify EXPORT.ndjson --public-key KEY     # KEY: a file or base64
    python -m audit.verify BODY.ndjson --manifest M --public-key KEY   # trailer kept apart
    python -m audit.verify EXPORT.ndjson --public-key keys.json --published DIR

KEY is base64 of the 32-byte Ed25519 public key, a PEM public key, or the JSON of
`GET /api/v1/integrity/keys` (every key in it; the manifest names which signed). Checks,
with no access to Lens or its database:

1. the manifest's signature verifies with the key, and so does its checkpoint;
2. every line is the one the manifest signed there (its line tags), so a removed, added,
   moved or changed line is named even when counts and digests were recomputed;
3. every line's `chain_hash` == sha256(bytes.fromhex(prev_chain_hash) + canonical(record));
4. lines with consecutive `seq` link; seq 1 starts from the genesis; no seq appears twice;
   a line right after a run retention removed links from that run's signed record;
5. no line is past the checkpoint's seq, and the line at it carries its chain hash;
6. the body's SHA-256 and its row count match the manifest;
7. with --published, the published checkpoints agree with the export (offline_signed.py).

Exit status 0 only when everything holds (a signature included), 1 naming the first bad
line otherwise, 2 when a file or the key cannot be read. The rules are in docs/integrity.md.
"""

import argparse
import hashlib
import json
import os
import sys

from audit.integrity import chain, offline_signed, signatures

_REPORT_AT_MOST = 20


class Problems:
    def __init__(self):
        self.items = []  # (line number or None, message)

    def add(self, line, message):
        self.items.append((line, message))

    def first_line(self):
        lines = [line for line, _ in self.items if line is not None]
        return min(lines) if lines else None


def _split(data: bytes, has_trailer: bool):
    """(body bytes, body lines as (number, bytes), trailer lines: [manifest, signature])."""
    lines = data.splitlines(keepends=True)
    trailer = []
    if has_trailer:
        while lines and not lines[-1].strip():
            lines.pop()
        trailer = lines[-2:]
        del lines[-2:]
    body = b"".join(lines)
    return body, list(enumerate(lines, start=1)), trailer


def _trailer(lines: list[bytes], problems: Problems, where: str):
    """(manifest, manifest line bytes, signature) from the manifest line and the signature line."""
    if not lines:
        problems.add(None, f"no manifest: {where} is empty")
        return None, b"", None
    parsed = []
    for raw in lines:
        try:
            parsed.append(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            problems.add(None, f"the manifest or its signature ({where}) is not JSON: {exc}")
            return None, b"", None
    manifest_index = next((n for n, doc in enumerate(parsed) if isinstance(doc, dict) and "manifest" in doc), None)
    manifest = parsed[manifest_index]["manifest"] if manifest_index is not None else None
    if not isinstance(manifest, dict) or "body_sha256" not in manifest:
        problems.add(None, f"{where} is not a Lens evidence manifest (no body_sha256)")
        return None, b"", None
    signature = parsed[manifest_index + 1].get("signature") if manifest_index + 1 < len(parsed) else None
    return manifest, lines[manifest_index].rstrip(b"\r\n"), signature


def _check_lines(lines, problems: Problems):
    """Recompute each line's hash; return seq -> (line number, chain hash, prev hash)."""
    by_seq = {}
    for number, raw in lines:
        try:
            record = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.add(number, f"line {number} is not JSON: {exc}")
            continue
        if not isinstance(record, dict):
            problems.add(number, f"line {number} is not an event object")
            continue
        seq, chain_hash, previous = record.get("seq"), record.get("chain_hash"), record.get("prev_chain_hash")
        label = f"line {number} (seq {seq}, id {record.get('id')})"
        if not isinstance(seq, int) or isinstance(seq, bool) or not _is_hash(chain_hash):
            problems.add(number, f"{label} has no valid seq and chain_hash")
            continue
        if not _is_hash(previous):
            problems.add(number, f"{label} has no prev_chain_hash: the event before it is missing from the chain")
        elif chain.next_chain_hash(previous, record) != chain_hash:
            problems.add(number, f"{label}: its content does not hash to its chain_hash (the line was changed)")
        if seq in by_seq:
            problems.add(number, f"{label}: seq {seq} already appeared on line {by_seq[seq][0]}")
            continue
        by_seq[seq] = (number, chain_hash, previous)
    return by_seq


def _check_links(by_seq, problems: Problems):
    for seq, (number, _, previous) in by_seq.items():
        if seq == 1 and previous != chain.GENESIS_HASH:
            problems.add(number, f"line {number} (seq 1) does not start from the genesis hash")
        before = by_seq.get(seq - 1)
        if before is not None and previous != before[1]:
            # Blame the line holding seq - 1: its hash is not the one its successor recorded.
            problems.add(
                before[0],
                f"line {number} (seq {seq}) does not link to line {before[0]} (seq {seq - 1}): "
                "its prev_chain_hash is not that line's chain_hash",
            )


def _check_head(by_seq, checkpoint, problems: Problems):
    if checkpoint is None:
        return
    for seq, (number, chain_hash, _) in by_seq.items():
        if seq > checkpoint["seq"]:
            problems.add(number, f"line {number} (seq {seq}) is past the checkpoint the export was cut against (seq {checkpoint['seq']})")
        elif seq == checkpoint["seq"] and chain_hash != checkpoint["chain_hash"]:
            problems.add(number, f"line {number} is the checkpoint's head (seq {seq}) but its chain_hash differs from the signed one")


def _is_hash(value):
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _describe(lines):
    def describe(index):
        number, raw = lines[index]
        try:
            seq = json.loads(raw).get("seq")
        except (ValueError, UnicodeDecodeError, AttributeError):
            seq = None
        return f"line {number}" + (f" (seq {seq})" if seq is not None else "")

    return describe


def verify(
    data: bytes, manifest_data: bytes | None = None, *, keys: dict | None = None, published: list[dict] | None = None
) -> tuple[Problems, dict | None, int]:
    """Check an export (and its separate manifest and signature, if any) with `keys`
    (key_id -> public key; None: the signature cannot be checked, which is a problem).
    Returns (problems, manifest, rows)."""
    problems = Problems()
    body, lines, trailer = _split(data, has_trailer=manifest_data is None)
    where = "the export's last lines" if manifest_data is None else "the manifest file"
    if manifest_data is not None:
        trailer = [line for line in manifest_data.splitlines(keepends=True) if line.strip()]
    manifest, manifest_line, signature = _trailer(trailer, problems, where)
    by_seq = _check_lines(lines, problems)
    _check_links(by_seq, problems)
    if manifest is not None:
        offline_signed.check_signature(manifest_line, signature, keys, problems)
        checkpoint = offline_signed.check_checkpoint(manifest, keys, problems)
        _check_head(by_seq, checkpoint, problems)
        offline_signed.check_line_tags(manifest.get("line_tags"), lines, problems, _describe(lines))
        offline_signed.check_removals(manifest, by_seq, keys, problems)
        if manifest.get("rows") != len(lines):
            problems.add(None, f"the body has {len(lines)} lines, the manifest says {manifest.get('rows')}")
        actual = hashlib.sha256(body).hexdigest()
        if actual != manifest.get("body_sha256"):
            problems.add(None, f"the body's SHA-256 is {actual}, the manifest says {manifest.get('body_sha256')}")
        if published is not None:
            offline_signed.check_published(published, checkpoint, by_seq, keys, problems)
    return problems, manifest, len(lines)


def _read_keys(value: str) -> dict:
    text = open(value, encoding="utf-8").read() if os.path.exists(value) else value
    return signatures.public_keys_load(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.verify", description="Verify a Lens evidence export offline.")
    parser.add_argument("file", help="the NDJSON export (its manifest and signature the last two lines, unless --manifest)")
    parser.add_argument("--manifest", help="the manifest and signature lines, when kept in a separate file")
    parser.add_argument(
        "--public-key",
        help="the organization's public key: base64, a PEM file, or the JSON of /api/v1/integrity/keys (file or text)",
    )
    parser.add_argument("--published", metavar="DIR", help="a directory of published checkpoints to compare with")
    args = parser.parse_args(argv)
    try:
        with open(args.file, "rb") as handle:
            data = handle.read()
        manifest_data = None
        if args.manifest:
            with open(args.manifest, "rb") as handle:
                manifest_data = handle.read()
    except OSError as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 2
    try:
        keys = _read_keys(args.public_key) if args.public_key else None
    except (OSError, ValueError) as exc:
        print(f"cannot read the public key: {exc}", file=sys.stderr)
        return 2

    published = None
    if args.published:
        org = _org_of(data if manifest_data is None else manifest_data)
        try:
            published = signatures.published_checkpoints_read(args.published, org=org)
        except (OSError, ValueError) as exc:
            print(f"cannot read the published checkpoints: {exc}", file=sys.stderr)
            return 2
    problems, manifest, rows = verify(data, manifest_data, keys=keys, published=published)
    if not problems.items:
        checkpoint = manifest["checkpoint"]
        print(
            f"OK: {rows} events; manifest signed by key {manifest['key_id']}, signature verified; body SHA-256 "
            f"{manifest['body_sha256']}; every line is the one signed and recomputes to its chain hash; checkpoint "
            f"seq {checkpoint['seq']} hash {checkpoint['chain_hash']} signed at {checkpoint['signed_at']}"
            + (f"; agrees with {len(published)} published checkpoints" if published is not None else "")
            + f"; exported by {manifest.get('exported_by')} at {manifest.get('exported_at')}"
        )
        return 0
    first = problems.first_line()
    print(f"FAILED: first bad line {first}" if first is not None else "FAILED", file=sys.stderr)
    ordered = sorted(problems.items, key=lambda item: (item[0] is None, item[0] or 0))
    for _, message in ordered[:_REPORT_AT_MOST]:
        print(f"  {message}", file=sys.stderr)
    if len(ordered) > _REPORT_AT_MOST:
        print(f"  … and {len(ordered) - _REPORT_AT_MOST} more", file=sys.stderr)
    return 1


def _org_of(data: bytes) -> str | None:
    """The organization the manifest names (to pick its published checkpoints)."""
    for raw in reversed(data.splitlines()[-3:]):
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("manifest"), dict):
            return doc["manifest"].get("org")
    return None


if __name__ == "__main__":
    sys.exit(main())
