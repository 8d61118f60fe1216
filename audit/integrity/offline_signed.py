"""The signed half of the offline verifier: the manifest's signature, its checkpoint, the
line tags that say which line was removed, added, moved or changed, and the comparison
with published checkpoints.

The standard library and `cryptography` only (no Django), like audit/integrity/offline.py.
"""

import hashlib
from bisect import bisect_left

from audit.integrity import signatures

TAG_DIGITS = 12  # hex digits per line tag (audit/integrity/evidence.py, LINE_TAG_BYTES)


def check_signature(manifest_line: bytes, signature, keys: dict | None, problems) -> str | None:
    """Does the signature line verify over the manifest line? Returns the key id that verified it."""
    if not isinstance(signature, dict) or not isinstance(signature.get("value"), str):
        problems.add(None, "the export has no signature line after its manifest: it is not a signed Lens export")
        return None
    if keys is None:
        problems.add(
            None, "no public key given (--public-key): the manifest's signature was not checked, so the export proves nothing"
        )
        return None
    named = signature.get("key_id")
    key_id = named if named in keys else next(iter(keys)) if len(keys) == 1 else None
    if key_id is None:
        problems.add(None, f"the manifest is signed by key {named}, and none of the public keys given is that key")
        return None
    if not signatures.signature_valid(keys[key_id], manifest_line, signature["value"]):
        because = (
            "the manifest was altered after it was signed"
            if key_id == named
            else f"the manifest names key {named}: the public key given is another organization's or another key"
        )
        problems.add(None, f"the manifest's signature does not verify with key {key_id}: {because}")
        return None
    return key_id


def check_checkpoint(manifest: dict, keys: dict | None, problems) -> dict | None:
    """The checkpoint the export was cut against: well formed, the manifest's organization, signed."""
    checkpoint = manifest.get("checkpoint")
    if not isinstance(checkpoint, dict):
        problems.add(None, "the manifest has no checkpoint")
        return None
    try:
        message = signatures.checkpoint_message(checkpoint)
    except ValueError as exc:
        problems.add(None, f"the manifest's {exc}")
        return None
    if checkpoint["org"] != manifest.get("org"):
        problems.add(None, f"the manifest's checkpoint is of organization {checkpoint['org']}, not {manifest.get('org')}")
    if keys is not None:
        key = keys.get(checkpoint["key_id"])
        if key is None:
            problems.add(None, f"the manifest's checkpoint is signed by key {checkpoint['key_id']}, which was not given")
        elif not signatures.signature_valid(key, message, checkpoint.get("signature")):
            problems.add(None, f"the manifest's checkpoint (seq {checkpoint['seq']}) does not verify with key {checkpoint['key_id']}")
    return checkpoint


def line_tag(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()[:TAG_DIGITS]


def check_line_tags(tags, lines, problems, describe) -> None:
    """Compare each body line with the signed tags; name each line removed, added, moved or changed.

    `lines` are (line number, bytes); `describe(index)` names the line at that index."""
    if not isinstance(tags, str) or len(tags) % TAG_DIGITS or any(c not in "0123456789abcdef" for c in tags):
        problems.add(None, "the manifest's line_tags are missing or malformed")
        return
    signed = [tags[at : at + TAG_DIGITS] for at in range(0, len(tags), TAG_DIGITS)]
    actual = [line_tag(raw) for _, raw in lines]
    if signed == actual:
        return
    match, in_order = _align(signed, actual)
    matched = {i for i in match if i is not None}
    edges = [(-1, -1)] + [(j, match[j]) for j in sorted(in_order)] + [(len(actual), len(signed))]
    for (j0, i0), (j1, i1) in zip(edges, edges[1:]):
        here = [j for j in range(j0 + 1, j1) if match[j] is None]
        gone = [i for i in range(i0 + 1, i1) if i not in matched]
        for j, i in zip(here, gone):
            problems.add(lines[j][0], f"{describe(j)} was changed: it is not the line the manifest signed there (line {i + 1})")
        for j in here[len(gone):]:
            problems.add(lines[j][0], f"{describe(j)} was added: the manifest signed no such line")
        for i in gone[len(here):]:
            after = f"after line {lines[j0][0]}" if j0 >= 0 else "at the start"
            problems.add(
                lines[j1][0] if j1 < len(lines) else None,
                f"the signed line {i + 1} is missing: removed ({after})",
            )
    for j, i in enumerate(match):
        if i is not None and j not in in_order:
            problems.add(lines[j][0], f"{describe(j)} is out of place: the manifest signed it as line {i + 1} (reordered)")


def _align(signed: list[str], actual: list[str]) -> tuple[list[int | None], set[int]]:
    """For each actual line, the signed position with its tag (or None); and the actual
    lines that are in signed order (a longest increasing run of positions)."""
    where = {}
    for i, tag in enumerate(signed):
        where.setdefault(tag, []).append(i)
    for positions in where.values():
        positions.reverse()  # pop() hands out the earliest first
    match = [where[tag].pop() if where.get(tag) else None for tag in actual]
    tails, tail_lines, back = [], [], {}
    for j, i in enumerate(match):
        if i is None:
            continue
        k = bisect_left(tails, i)
        back[j] = tail_lines[k - 1] if k else None
        if k == len(tails):
            tails.append(i)
            tail_lines.append(j)
        else:
            tails[k], tail_lines[k] = i, j
    in_order, j = set(), tail_lines[-1] if tail_lines else None
    while j is not None:
        in_order.add(j)
        j = back[j]
    return match, in_order


def check_published(published: list[dict], checkpoint: dict | None, by_seq: dict, keys: dict | None, problems) -> None:
    """Compare the export with the checkpoints published where the customer keeps them: each
    verifies; no line contradicts one; the export's checkpoint is one of them or follows the
    newest one published before it; none published earlier holds a higher head."""
    if not published:
        problems.add(None, "no published checkpoint of this organization was found to compare with")
        return
    digests, good = set(), []
    for copy in published:
        try:
            message = signatures.checkpoint_message(copy)
        except ValueError as exc:
            problems.add(None, f"a published {exc}")
            continue
        good.append(copy)
        label = f"the checkpoint published for {copy['signed_at']} (seq {copy['seq']})"
        key = (keys or {}).get(copy["key_id"])
        if key is None:
            problems.add(None, f"{label} is signed by key {copy['key_id']}, which was not given: pass every key (the JSON of /api/v1/integrity/keys)")
        elif not signatures.signature_valid(key, message, copy.get("signature")):
            problems.add(None, f"{label} does not verify with key {copy['key_id']}")
        digests.add(hashlib.sha256(message).hexdigest())
        line = by_seq.get(copy["seq"])
        if line is not None and line[1] != copy["chain_hash"]:
            problems.add(line[0], f"line {line[0]} (seq {copy['seq']}) does not carry the chain hash {label} signs: the trail was rewritten")
    if checkpoint is None:
        return
    earlier = [copy for copy in good if copy["signed_at"] < checkpoint["signed_at"]]
    for copy in earlier:
        if copy["seq"] > checkpoint["seq"] or (copy["seq"] == checkpoint["seq"] and copy["chain_hash"] != checkpoint["chain_hash"]):
            problems.add(
                None,
                f"the checkpoint published for {copy['signed_at']} signs seq {copy['seq']} with another chain than the "
                f"export's checkpoint (seq {checkpoint['seq']}, signed later): events were removed or rewritten",
            )
    if signatures.checkpoint_digest(checkpoint) not in digests and earlier and checkpoint["previous"] != signatures.checkpoint_digest(earlier[-1]):
        problems.add(
            None,
            f"the export's checkpoint (signed at {checkpoint['signed_at']}) is not among the published copies and does "
            f"not follow the newest one published before it ({earlier[-1]['signed_at']}): the checkpoints were rewritten",
        )


def check_removals(manifest: dict, by_seq: dict, keys: dict | None, problems) -> None:
    """The signed records of runs retention removed (manifest `removals`): each verifies with
    its key, no exported line lies inside its run, and the line right after it links from its
    last hash — the prev_chain_hash of a first line kept after a removal is vouched for."""
    records = manifest.get("removals", [])
    if not isinstance(records, list):
        problems.add(None, "the manifest's removals are malformed")
        return
    for record in records:
        try:
            message = signatures.removal_message(record)
        except (ValueError, AttributeError) as exc:
            problems.add(None, f"the manifest's removal record is malformed: {exc}")
            continue
        first, last = int(record["first_seq"]), int(record["last_seq"])
        label = f"the removal of seqs {first}–{last}"
        key = keys.get(record["key_id"]) if keys is not None else None
        if keys is not None and (key is None or not signatures.signature_valid(key, message, record.get("signature"))):
            problems.add(None, f"{label} does not verify with key {record['key_id']}: it was altered or forged")
        inside = [seq for seq in by_seq if first <= seq <= last]
        for seq in sorted(inside):
            problems.add(by_seq[seq][0], f"line {by_seq[seq][0]} (seq {seq}) is inside {label}")
        after = by_seq.get(last + 1)
        if after is not None and after[2] != record["last_hash"]:
            problems.add(after[0], f"line {after[0]} (seq {last + 1}) does not link from {label}")
