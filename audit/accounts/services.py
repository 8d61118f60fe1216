"""Writes of the accounts room: organizations, API keys, logins."""

import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.accounts.models import ApiKey, Membership, Organization


def org_get_or_create(*, slug: str) -> Organization:
    org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": slug})
    return org


def _key_digest(key: str) -> str:
    # Keys carry 256 random bits, so a plain SHA-256 is a safe one-way store.
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, org: Organization, scopes: list[str], name: str = "") -> tuple[ApiKey, str]:
    """Create a key; the plain key is returned once and never stored."""
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {', '.join(ApiKey.Scope.values)}; got {', '.join(scopes) or 'none'}")
    prefix = secrets.token_hex(4)
    plain = f"lens_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(org=org, name=name, prefix=prefix, key_hash=_key_digest(plain), scopes=sorted(set(scopes)))
    return key, plain


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now())


def api_key_authenticate(*, plain: str) -> ApiKey | None:
    """The live key matching `plain`, or None. Compared in constant time."""
    parts = plain.split("_")
    if len(parts) < 3 or parts[0] != "lens":
        return None
    key = ApiKey.objects.select_related("org").filter(prefix=parts[1], revoked_at=None).first()
    if key is None or not secrets.compare_digest(key.key_hash, _key_digest(plain)):
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        # At most one write a minute per key: last-used is for people, not accounting.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def user_create(*, org: Organization, username: str, password: str, role: str = Membership.Role.VIEWER):
    """Create a login in `org`, or reset the password and role of an existing one there."""
    if role not in Membership.Role.values:
        raise ValueError(f"role must be one of {', '.join(Membership.Role.values)}")
    user_model = get_user_model()
    with transaction.atomic():
        user, _ = user_model.objects.get_or_create(username=username)
        membership = Membership.objects.filter(user=user).first()
        if membership is not None and membership.org_id != org.pk:
            raise ValueError(f"user {username!r} already belongs to another organization")
        user.set_password(password)
        user.is_staff = False
        user.save()
        Membership.objects.update_or_create(user=user, defaults={"org": org, "role": role})
    return user
