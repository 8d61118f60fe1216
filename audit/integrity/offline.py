"""Offline verifier for Lens evidence exports. Standard library only (plus audit/integrity/chain.py).

    python -m audit.verify EXPORT.ndjson                 # manifest is the file's last line
    python -m audit.verify EXPORT.ndjson --manifest M    # manifest kept in a separate file

Checks, with no access to Lens or its database:

1. every line's `chain_hash` == sha256(bytes.fromhex(prev_chain_hash) + canonical(record));
2. lines with consecutive `seq` link: the later one's `prev_chain_hash` is the earlier
   one's `chain_hash`; seq 1 starts from the genesis; no seq appears twice;
3. no line is past the manifest's chain head, and the head's own line carries its hash;
4. the body's SHA-256 and its row count match the manifest.

Exit status 0 when everything holds, 1 naming the first bad line otherwise, 2 when the
files cannot be read. The rules are in docs/integrity.md.
"""

import argparse
import hashlib
import json
import sys

from audit.integrity import chain

_REPORT_AT_MOST = 20


class Problems:
    def __init__(self):
        self.items = []  # (line number or None, message)

    def add(self, line, message):
        self.items.append((line, message))

    def first_line(self):
        lines = [line for line, _ in self.items if line is not None]
        return min(lines) if lines else None


def _split(data: bytes, has_manifest_line: bool):
    """(body bytes, body lines as (number, bytes), manifest line bytes or None)."""
    lines = data.splitlines(keepends=True)
    manifest_line = None
    if has_manifest_line:
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            manifest_line = lines.pop()
    body = b"".join(lines)
    return body, list(enumerate(lines, start=1)), manifest_line


def _manifest(raw: bytes | None, problems: Problems, where: str):
    if raw is None:
        problems.add(None, f"no manifest: {where} is empty")
        return None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        problems.add(None, f"the manifest ({where}) is not JSON: {exc}")
        return None
    manifest = data.get("manifest", data) if isinstance(data, dict) else None
    if not isinstance(manifest, dict) or "body_sha256" not in manifest:
        problems.add(None, f"{where} is not a Lens evidence manifest (no body_sha256)")
        return None
    return manifest


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


def _check_head(by_seq, head, problems: Problems):
    if not isinstance(head, dict) or not isinstance(head.get("seq"), int):
        problems.add(None, "the manifest has no chain_head")
        return
    for seq, (number, chain_hash, _) in by_seq.items():
        if seq > head["seq"]:
            problems.add(number, f"line {number} (seq {seq}) is past the chain head in the manifest (seq {head['seq']})")
        elif seq == head["seq"] and chain_hash != head.get("hash"):
            problems.add(number, f"line {number} is the chain head but its chain_hash differs from the manifest's")


def _is_hash(value):
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def verify(data: bytes, manifest_data: bytes | None = None) -> tuple[Problems, dict | None, int]:
    """Check an export (and its separate manifest, if any). Returns (problems, manifest, rows)."""
    problems = Problems()
    body, lines, manifest_line = _split(data, has_manifest_line=manifest_data is None)
    manifest = _manifest(
        manifest_line if manifest_data is None else manifest_data,
        problems,
        "the export's last line" if manifest_data is None else "the manifest file",
    )
    lines = [(number, raw) for number, raw in lines if raw.strip()]
    by_seq = _check_lines(lines, problems)
    _check_links(by_seq, problems)
    if manifest is not None:
        _check_head(by_seq, manifest.get("chain_head"), problems)
        if manifest.get("rows") != len(lines):
            problems.add(None, f"the body has {len(lines)} lines, the manifest says {manifest.get('rows')}")
        actual = hashlib.sha256(body).hexdigest()
        if actual != manifest.get("body_sha256"):
            problems.add(None, f"the body's SHA-256 is {actual}, the manifest says {manifest.get('body_sha256')}")
    return problems, manifest, len(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.verify", description="Verify a Lens evidence export offline.")
    parser.add_argument("file", help="the NDJSON export (with its manifest as the last line, unless --manifest)")
    parser.add_argument("--manifest", help="the manifest, when kept in a separate file")
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

    problems, manifest, rows = verify(data, manifest_data)
    if not problems.items:
        head = manifest["chain_head"]
        print(
            f"OK: {rows} events; body SHA-256 {manifest['body_sha256']}; every line recomputes to its chain hash; "
            f"chain head seq {head['seq']} hash {head['hash']}; exported by {manifest.get('exported_by')} "
            f"at {manifest.get('exported_at')}"
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


if __name__ == "__main__":
    sys.exit(main())
