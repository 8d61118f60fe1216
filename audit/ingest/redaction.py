"""Redaction at ingest (SPEC §11): chosen values are replaced at the door, before the
event is validated, sized or hashed, by `"[redacted:<16 hex>]"` — the first 16 hex
digits of HMAC-SHA256, with the organization's own key, of the value's canonical JSON
(audit/integrity/chain.py). Equal values give equal tokens within an organization, so
filters and searches for a token still group them; nothing of the value is stored, and
another organization's tokens for the same value differ.

Paths: `arguments.<key>[.<key>…]` (nested objects) or `metadata.<key>`. A path that is
absent from an event leaves it as it is.
"""

import hashlib
import hmac
import os
import re

from django.db import transaction

from audit.accounts.models import Organization
from audit.integrity import chain, keys
from audit.ingest.models import RedactionPolicy

TOKEN_PREFIX = "[redacted:"
TOKEN_RE = re.compile(r"^\[redacted:[0-9a-f]{16}\]$")
_KEY_PART = r"[^.\s]{1,128}"
PATH_RE = re.compile(rf"^(arguments(\.{_KEY_PART}){{1,8}}|metadata\.{_KEY_PART})$")
MAX_PATHS = 100


class RedactionError(ValueError):
    pass


def _label(org: Organization) -> str:
    return f"redaction-key:{org.pk}"


def redaction_set(*, org: Organization, paths: list[str]) -> RedactionPolicy:
    """From now on, redact exactly `paths` in the organization's incoming events (none: stop).
    Raises RedactionError for a malformed path, keys.SigningUnavailable when no key can be stored."""
    cleaned = sorted(set(path.strip() for path in paths))
    bad = [path for path in cleaned if not PATH_RE.fullmatch(path)]
    if bad:
        raise RedactionError(
            f"{bad[0]!r} is not a redaction path: use arguments.<key>[.<key>…] or metadata.<key>"
        )
    if len(cleaned) > MAX_PATHS:
        raise RedactionError(f"at most {MAX_PATHS} paths")
    with transaction.atomic():
        policy = RedactionPolicy.objects.select_for_update().filter(org=org).first()
        if policy is None:
            policy = RedactionPolicy(org=org, key_encrypted=keys.secret_seal(os.urandom(32), label=_label(org)))
        policy.paths = cleaned
        policy.save()
    return policy


def redaction_paths(*, org: Organization) -> list[str]:
    return list(RedactionPolicy.objects.filter(org=org).values_list("paths", flat=True).first() or [])


def redaction_token(key: bytes, value) -> str:
    digest = hmac.new(key, chain.canonical_bytes(value), hashlib.sha256).hexdigest()
    return f"{TOKEN_PREFIX}{digest[:16]}]"


class Redactor:
    """The organization's paths and key, read once per request."""

    def __init__(self, paths: list[str], key: bytes):
        self.paths = [path.split(".") for path in paths]
        self.key = key

    def redact(self, raw):
        """A copy of the raw item with each path's value replaced (the item itself when no path
        is in it). Items that are not objects are left for validation to refuse."""
        if not isinstance(raw, dict):
            return raw
        copied = False
        for top, *keys_ in self.paths:
            container = raw.get(top)
            if not isinstance(container, dict):
                continue
            trail = [container]
            for key in keys_[:-1]:
                inner = trail[-1].get(key)
                if not isinstance(inner, dict):
                    break
                trail.append(inner)
            else:
                if keys_[-1] not in trail[-1]:
                    continue
                if not copied:
                    raw, copied = dict(raw), True
                # Copy the nested objects on the way down: the caller's item stays as sent.
                node = raw[top] = dict(raw[top])
                for key in keys_[:-1]:
                    node[key] = dict(node[key])
                    node = node[key]
                node[keys_[-1]] = redaction_token(self.key, node[keys_[-1]])
        return raw


def redactor_for(*, org: Organization) -> Redactor | None:
    """None when the organization redacts nothing. Raises keys.SigningUnavailable when its
    key cannot be opened (the events must then not be stored unredacted)."""
    policy = RedactionPolicy.objects.filter(org=org).values_list("paths", "key_encrypted").first()
    if policy is None or not policy[0]:
        return None
    return Redactor(policy[0], keys.secret_open(policy[1], label=_label(org)))


def items_redact(*, org: Organization, items: list) -> list:
    """The ingest door's hook: every raw item with the organization's paths redacted."""
    redactor = redactor_for(org=org)
    if redactor is None:
        return items
    return [redactor.redact(item) for item in items]


def redacted_paths(*, arguments, metadata) -> list[str]:
    """The paths of a stored event that hold redaction tokens (the event page marks them)."""
    found = []

    def walk(value, path):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}")
        elif isinstance(value, str) and TOKEN_RE.fullmatch(value):
            found.append(path)

    walk(arguments, "arguments")
    walk(metadata, "metadata")
    return found
