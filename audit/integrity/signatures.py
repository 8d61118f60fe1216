"""What Lens signs, byte for byte, and how a signature is checked.

The standard library and `cryptography` only (no Django): the server signs with these
rules and the offline verifier (`python -m audit.verify`) checks with them. The same
rules, in prose, are in docs/integrity.md ("Signed checkpoints"), so a third party can
check a signature with openssl or a few lines of another language.

* Keys are Ed25519. A public key is published as base64 of its 32 raw bytes; its
  `key_id` is the first 16 hex digits of the SHA-256 of those 32 bytes.
* A signature is base64 (standard alphabet, padded) of the 64-byte Ed25519 signature.
* A checkpoint's signed message is ASCII text, one `name=value` line per field, in
  this order, every line (the last included) ending in one line feed:

      lens-checkpoint/1
      org=<organization slug>
      seq=<the head's seq, decimal>
      chain_hash=<the head's chain hash, 64 lowercase hex>
      signed_at=<UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ>
      key_id=<16 lowercase hex>
      previous=<digest of the previous checkpoint, or 64 zeros for the first>
      reason=<schedule, export, removal, manual…>

  A checkpoint's digest is the lowercase hex SHA-256 of its message.
* An evidence manifest's signed message is the manifest line exactly as it appears in
  the export, without its line feed (see audit/integrity/evidence.py).
"""

import base64
import binascii
import hashlib
import json
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

ALGORITHM = "ed25519"
CHECKPOINT_FORMAT = "lens-checkpoint/1"
NO_PREVIOUS = "0" * 64
# The checkpoint fields in message order, each with the shape its value must have (so no
# value can carry a line feed into the message).
CHECKPOINT_FIELDS = (
    ("org", re.compile(r"[A-Za-z0-9_-]{1,64}")),
    ("seq", re.compile(r"0|[1-9][0-9]{0,18}")),
    ("chain_hash", re.compile(r"[0-9a-f]{64}")),
    ("signed_at", re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")),
    ("key_id", re.compile(r"[0-9a-f]{16}")),
    ("previous", re.compile(r"[0-9a-f]{64}")),
    ("reason", re.compile(r"[a-z][a-z0-9-]{0,31}")),
)
REASON = CHECKPOINT_FIELDS[-1][1]


def checkpoint_message(checkpoint: dict) -> bytes:
    """The bytes a checkpoint's signature covers. ValueError names a malformed field."""
    lines = [CHECKPOINT_FORMAT]
    for name, shape in CHECKPOINT_FIELDS:
        value = checkpoint.get(name)
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not shape.fullmatch(text):
            raise ValueError(f"checkpoint field {name} is missing or malformed: {value!r}")
        lines.append(f"{name}={text}")
    return ("\n".join(lines) + "\n").encode("ascii")


REMOVAL_FORMAT = "lens-removal/1"
# A run of seqs retention removed (audit/integrity/removals.py): the next stored event links
# from `last_hash`; `checkpoint` is the digest of the checkpoint signed just before.
REMOVAL_FIELDS = (
    CHECKPOINT_FIELDS[0],
    ("first_seq", CHECKPOINT_FIELDS[1][1]),
    ("last_seq", CHECKPOINT_FIELDS[1][1]),
    ("last_hash", CHECKPOINT_FIELDS[2][1]),
    ("removed_at", CHECKPOINT_FIELDS[3][1]),
    ("checkpoint", CHECKPOINT_FIELDS[2][1]),
    CHECKPOINT_FIELDS[4],
)


def removal_message(removal: dict) -> bytes:
    """The bytes a removal record's signature covers: like a checkpoint's, eight lines."""
    lines = [REMOVAL_FORMAT]
    for name, shape in REMOVAL_FIELDS:
        value = removal.get(name)
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not shape.fullmatch(text):
            raise ValueError(f"removal field {name} is missing or malformed: {value!r}")
        lines.append(f"{name}={text}")
    return ("\n".join(lines) + "\n").encode("ascii")


def checkpoint_digest(checkpoint: dict) -> str:
    return hashlib.sha256(checkpoint_message(checkpoint)).hexdigest()


def key_id_of(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_from_base64(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise ValueError("not base64 of a 32-byte Ed25519 public key") from None


def public_keys_load(text: str) -> dict[str, Ed25519PublicKey]:
    """key_id -> public key, from what an auditor holds: base64 of the 32 raw bytes, a PEM
    public key, or the JSON that `GET /api/v1/integrity/keys` returns (every key in it)."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        keys = [key]
    elif text.startswith(("[", "{")):
        data = json.loads(text)
        items = data if isinstance(data, list) else data.get("results", [data]) if isinstance(data, dict) else []
        keys = [public_key_from_base64(item["public_key"]) for item in items if isinstance(item, dict) and "public_key" in item]
        if not keys:
            raise ValueError("the JSON holds no public_key")
    else:
        keys = [public_key_from_base64(text)]
    return {key_id_of(public_raw(key)): key for key in keys}


def signature_valid(public_key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def published_checkpoints_read(directory: str, *, org: str) -> list[dict]:
    """The organization's checkpoints published in `directory` (audit/integrity/publication.py),
    oldest first. OSError when it cannot be read; ValueError names a file that is not a checkpoint."""
    found = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            checkpoint = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path.name} is not JSON: {exc}") from None
        if not isinstance(checkpoint, dict) or "signature" not in checkpoint:
            raise ValueError(f"{path.name} is not a Lens checkpoint")
        if checkpoint.get("org") == org:
            found.append(checkpoint)
    return sorted(found, key=lambda checkpoint: str(checkpoint.get("signed_at")))
