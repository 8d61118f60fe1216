"""Secrets at rest: sealed with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`)
under a key derived from SECRET_KEY.

SECRET_KEY_FALLBACKS keep opening what older keys sealed, so SECRET_KEY can be rotated
as Django documents; reseal (`seal(unseal(x))`) to move a secret to the new key.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SealBroken(Exception):
    """A sealed value no configured key opens (SECRET_KEY changed without a fallback)."""


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"lens-seal-v1:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> MultiFernet:
    return MultiFernet([_fernet(key) for key in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)])


def seal(plain: str) -> str:
    return _keys().encrypt(plain.encode()).decode()


def unseal(sealed: str) -> str:
    try:
        return _keys().decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise SealBroken("no configured key opens this secret; was SECRET_KEY changed without SECRET_KEY_FALLBACKS?") from None
