"""The organizations' Ed25519 signing keys: made on first need, encrypted at rest, rotated.

A private key is stored only as `v1:` + base64(nonce ‖ AES-256-GCM ciphertext), under a
key-encryption key derived with HKDF-SHA256 from the LENS_SIGNING_KEY_SECRET setting,
with the key's id as associated data; it is decrypted for one signature at a time and
never leaves the server. Retiring a key erases its private half: what it signed still
verifies with its public half, which stays published (docs/integrity.md says how to
back keys up and restore them).
"""

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.accounts.models import Organization
from audit.integrity import signatures
from audit.integrity.models import SigningKey

_ENCRYPTION_INFO = b"lens signing-key encryption v1"
_ENCRYPTED_PREFIX = "v1:"
_LOCK_CLASS = 0x4C454E43  # "LENC": per-organization signing lock (ingest's chain lock is "LENS")


class SigningUnavailable(ImproperlyConfigured):
    """Lens cannot sign: no LENS_SIGNING_KEY_SECRET, or it is not the one the key was stored under."""


def _key_encryption_key() -> AESGCM:
    secret = settings.LENS_SIGNING_KEY_SECRET
    if not secret:
        raise SigningUnavailable(
            "LENS_SIGNING_KEY_SECRET is not set: Lens signs no checkpoint or evidence export without it "
            "(docs/integrity.md, 'Signing keys')"
        )
    # The secret is high-entropy by requirement, so HKDF (not a password hash) is the right derivation.
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_ENCRYPTION_INFO).derive(secret.encode())
    return AESGCM(derived)


def signing_ready() -> None:
    """Raise SigningUnavailable now, before a request starts something it could not sign."""
    _key_encryption_key()


def _encrypt(private_raw: bytes, *, key_id: str) -> str:
    nonce = os.urandom(12)
    sealed = _key_encryption_key().encrypt(nonce, private_raw, key_id.encode())
    return _ENCRYPTED_PREFIX + base64.b64encode(nonce + sealed).decode()


def _decrypt(key: SigningKey) -> Ed25519PrivateKey:
    if not key.private_key_encrypted.startswith(_ENCRYPTED_PREFIX):
        raise SigningUnavailable(f"signing key {key.key_id} has no private key (it was retired)")
    blob = base64.b64decode(key.private_key_encrypted[len(_ENCRYPTED_PREFIX):])
    try:
        raw = _key_encryption_key().decrypt(blob[:12], blob[12:], key.key_id.encode())
    except InvalidTag:
        raise SigningUnavailable(
            f"signing key {key.key_id} cannot be decrypted with LENS_SIGNING_KEY_SECRET: the secret "
            "changed or the stored key was altered. Restore the secret, or run rotate_signing_key for a new key."
        ) from None
    private = Ed25519PrivateKey.from_private_bytes(raw)
    if signatures.key_id_of(signatures.public_raw(private.public_key())) != key.key_id:
        raise SigningUnavailable(f"signing key {key.key_id}: its private half does not match its public half")
    return private


def signing_lock(*, org_id: int) -> None:
    """Inside a transaction: one signer or rotation at a time per organization, so the
    checkpoints form one chain and none is signed by a key being retired (on SQLite the
    IMMEDIATE transactions already serialize)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, org_id])


def signing_key_create(*, org: Organization) -> SigningKey:
    """A new live key for `org` (the caller retires the old one first, in the same transaction)."""
    private = Ed25519PrivateKey.generate()
    public = signatures.public_raw(private.public_key())
    key_id = signatures.key_id_of(public)
    private_raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return SigningKey.objects.create(
        org=org,
        key_id=key_id,
        public_key=base64.b64encode(public).decode(),
        private_key_encrypted=_encrypt(private_raw, key_id=key_id),
        created_at=timezone.now(),
    )


def signing_key_live(*, org: Organization) -> SigningKey:
    """The organization's live key, made on first need (one even when two callers race)."""
    key = SigningKey.objects.filter(org=org, retired_at=None).first()
    if key is not None:
        return key
    signing_ready()
    try:
        with transaction.atomic():
            return signing_key_create(org=org)
    except IntegrityError:  # another process made it first (one live key per organization)
        return SigningKey.objects.get(org=org, retired_at=None)


def signing_key_rotate(*, org: Organization) -> tuple[SigningKey | None, SigningKey]:
    """Retire the live key (erasing its private half) and make a new one: (retired, new)."""
    signing_ready()
    with transaction.atomic():
        signing_lock(org_id=org.pk)
        retired = SigningKey.objects.select_for_update().filter(org=org, retired_at=None).first()
        if retired is not None:
            retired.retired_at = timezone.now()
            retired.private_key_encrypted = ""
            retired.save(update_fields=["retired_at", "private_key_encrypted"])
        return retired, signing_key_create(org=org)


def signature_make(*, key: SigningKey, message: bytes) -> str:
    """base64 of the Ed25519 signature of `message` by `key`."""
    return base64.b64encode(_decrypt(key).sign(message)).decode()


def secret_seal(raw: bytes, *, label: str) -> str:
    """Encrypt another per-organization secret (the redaction key) the way private keys are:
    `v1:` + base64(nonce ‖ AES-256-GCM), `label` as associated data. Raises SigningUnavailable."""
    return _encrypt(raw, key_id=label)


def secret_open(sealed: str, *, label: str) -> bytes:
    """The raw bytes `secret_seal` sealed under `label`. Raises SigningUnavailable."""
    if not sealed.startswith(_ENCRYPTED_PREFIX):
        raise SigningUnavailable(f"{label}: not an encrypted secret")
    blob = base64.b64decode(sealed[len(_ENCRYPTED_PREFIX):])
    try:
        return _key_encryption_key().decrypt(blob[:12], blob[12:], label.encode())
    except InvalidTag:
        raise SigningUnavailable(f"{label} cannot be decrypted with LENS_SIGNING_KEY_SECRET: the secret changed") from None
