"""Signing keys: made on first need, encrypted at rest, refused without the secret, rotated."""

import base64
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from audit.integrity import keys, signatures
from audit.integrity.checkpoints import checkpoint_create
from audit.models import SigningKey


def test_a_key_is_made_on_first_need_and_then_reused(org):
    assert not SigningKey.objects.exists()
    key = keys.signing_key_live(org=org)
    assert keys.signing_key_live(org=org) == key and SigningKey.objects.count() == 1
    public = base64.b64decode(key.public_key)
    assert len(public) == 32 and key.key_id == signatures.key_id_of(public)


def test_the_private_key_is_stored_only_encrypted(org):
    key = keys.signing_key_live(org=org)
    assert key.private_key_encrypted.startswith("v1:")
    private = keys._decrypt(key)
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    stored = base64.b64decode(key.private_key_encrypted[3:])
    assert raw not in stored and base64.b64encode(raw).decode() not in key.private_key_encrypted
    message = b"hello"
    assert signatures.signature_valid(
        signatures.public_key_from_base64(key.public_key), message, keys.signature_make(key=key, message=message)
    )


def test_without_the_secret_nothing_is_signed(org, settings):
    settings.LENS_SIGNING_KEY_SECRET = ""
    with pytest.raises(keys.SigningUnavailable, match="LENS_SIGNING_KEY_SECRET is not set"):
        checkpoint_create(org=org, reason="manual")
    assert not SigningKey.objects.exists()


def test_another_secret_cannot_use_the_stored_key(org, settings):
    key = keys.signing_key_live(org=org)
    settings.LENS_SIGNING_KEY_SECRET = "a-different-secret-of-enough-length-000000"
    with pytest.raises(keys.SigningUnavailable, match="cannot be decrypted with LENS_SIGNING_KEY_SECRET"):
        keys.signature_make(key=key, message=b"x")


def test_an_encrypted_key_moved_to_another_key_row_does_not_decrypt(org, other_org):
    ours, theirs = keys.signing_key_live(org=org), keys.signing_key_live(org=other_org)
    SigningKey.objects.filter(pk=theirs.pk).update(private_key_encrypted=ours.private_key_encrypted)
    theirs.refresh_from_db()
    with pytest.raises(keys.SigningUnavailable):
        keys.signature_make(key=theirs, message=b"x")


def test_one_live_key_per_organization(org):
    keys.signing_key_live(org=org)
    with pytest.raises(IntegrityError), transaction.atomic():
        keys.signing_key_create(org=org)


def test_rotate_signing_key_retires_the_live_key_and_erases_its_private_half(org):
    old = keys.signing_key_live(org=org)
    out = io.StringIO()
    call_command("rotate_signing_key", "--org", "acme", stdout=out)
    old.refresh_from_db()
    new = keys.signing_key_live(org=org)
    assert old.retired_at is not None and old.private_key_encrypted == "" and new != old
    assert f"retired key {old.key_id}" in out.getvalue() and f"new key {new.key_id}" in out.getvalue()
    with pytest.raises(keys.SigningUnavailable, match="retired"):
        keys.signature_make(key=old, message=b"x")
    assert checkpoint_create(org=org, reason="manual").signing_key == new


def test_rotate_signing_key_needs_a_known_organization_and_the_secret(org, settings):
    with pytest.raises(CommandError, match="no organization 'nope'"):
        call_command("rotate_signing_key", "--org", "nope")
    settings.LENS_SIGNING_KEY_SECRET = ""
    with pytest.raises(CommandError, match="LENS_SIGNING_KEY_SECRET"):
        call_command("rotate_signing_key", "--org", "acme")
