"""Keyset ("older/newer") pages over a queryset ordered newest first on (a time, id),
for the browser pages and the API alike; and forward pages of a trace's chain.

The cursor is the (time, id) of the row at a page edge and a direction: a page is one
indexed range scan however deep it is, and rows arriving meanwhile never shift what
"older" means. The id is the table's global row id, which would tell one organization
how much every other one writes; so the cursor is sealed (AES-GCM, a key derived from
SECRET_KEY) with its scope (organization and list) as associated data: it reveals
nothing, cannot be altered, and is refused on any other organization's or list's page.
"""

import binascii
import functools
import os
import struct
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils.crypto import salted_hmac

from audit.explore.vocabulary import ParameterError

CURSOR_PARAM = "cursor"
PAGE_SIZE_PARAM = "page_size"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class BadPage(ParameterError):
    """A cursor or page size this paginator did not give out."""

    def __init__(self, name, message):
        super().__init__({name: [message]})


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PAYLOAD = struct.Struct(">?qq")  # backwards, microseconds since the epoch, row id
_NONCE_BYTES = 12


@functools.lru_cache(maxsize=4)
def _sealer(secret_key: str) -> AESGCM:
    return AESGCM(salted_hmac("lens.explore.pagination.cursor", "key", secret=secret_key, algorithm="sha256").digest())


def page_scope(*, org_id: int, queryset: QuerySet) -> str:
    """Where a cursor is valid: one organization's list of one kind of row."""
    return f"{org_id}:{queryset.model._meta.label_lower}"


@dataclass(frozen=True)
class Cursor:
    value: datetime
    id: int
    scope: str
    backwards: bool = False  # toward newer rows

    def encode(self) -> str:
        payload = _PAYLOAD.pack(self.backwards, (self.value - _EPOCH) // timedelta(microseconds=1), self.id)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = _sealer(settings.SECRET_KEY).encrypt(nonce, payload, self.scope.encode())
        return urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, *, scope: str) -> "Cursor":
        try:
            raw = urlsafe_b64decode(text + "=" * (-len(text) % 4))
            payload = _sealer(settings.SECRET_KEY).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], scope.encode())
            backwards, micros, row_id = _PAYLOAD.unpack(payload)
            return cls(value=_EPOCH + timedelta(microseconds=micros), id=row_id, scope=scope, backwards=backwards)
        except (ValueError, binascii.Error, InvalidTag, OverflowError, struct.error):
            raise BadPage(CURSOR_PARAM, "is not a cursor Lens gave out; start again from the newest") from None


@dataclass
class KeysetPage:
    rows: list = field(default_factory=list)
    older: Cursor | None = None  # the next page back in time
    newer: Cursor | None = None  # the page before this one
    before: int = 0  # rows before this page (chain pages: the position of its first row, minus one)


def page_size(text: str | None) -> int:
    """A requested page size, 1–MAX_PAGE_SIZE (ASCII digits only)."""
    if text is None or text == "":
        return DEFAULT_PAGE_SIZE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise BadPage(PAGE_SIZE_PARAM, f"must be an integer from 1 to {MAX_PAGE_SIZE}")
    return int(text)


def keyset_page(
    *, queryset: QuerySet, time_field: str, size: int, org_id: int, cursor: str | None = None
) -> KeysetPage:
    """`size` rows after `cursor` in its direction (or the newest), newest first."""
    scope = page_scope(org_id=org_id, queryset=queryset)
    position = Cursor.decode(cursor, scope=scope) if cursor else None
    f = time_field
    if position is None:
        rows = list(queryset.order_by(f"-{f}", "-id")[: size + 1])
    elif not position.backwards:
        # value <= v narrows the index range; the OR breaks ties by id.
        older = Q(**{f"{f}__lte": position.value}) & (Q(**{f"{f}__lt": position.value}) | Q(id__lt=position.id))
        rows = list(queryset.filter(older).order_by(f"-{f}", "-id")[: size + 1])
    else:
        newer = Q(**{f"{f}__gte": position.value}) & (Q(**{f"{f}__gt": position.value}) | Q(id__gt=position.id))
        rows = list(queryset.filter(newer).order_by(f, "id")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if position is not None and position.backwards:
        rows.reverse()

    page = KeysetPage(rows=rows)
    if more or (position is not None and position.backwards):
        edge = (getattr(rows[-1], f), rows[-1].id) if rows else (position.value, position.id)
        page.older = Cursor(*edge, scope=scope)
    if position is not None and (not position.backwards or more):
        edge = (getattr(rows[0], f), rows[0].id) if rows else (position.value, position.id)
        page.newer = Cursor(*edge, scope=scope, backwards=True)
    return page


def chain_page(
    *, queryset: QuerySet, time_field: str, size: int, org_id: int, cursor: str | None = None,
    max_bytes: int | None = None, weigh=None,
) -> KeysetPage:
    """`size` rows after `cursor`, oldest first (a trace's chain, in order). Only `older`
    is set, pointing onward to later rows. With `max_bytes`, the page also ends once the
    rows' `weigh(row)` add up past it (always at least one row), so large rows make
    shorter pages instead of an unbounded answer."""
    scope = page_scope(org_id=org_id, queryset=queryset) + ":chain"
    f = time_field
    rows, before = queryset.order_by(f, "id"), 0
    if cursor:
        at = Cursor.decode(cursor, scope=scope)
        rows = rows.filter(Q(**{f"{f}__gte": at.value}) & (Q(**{f"{f}__gt": at.value}) | Q(id__gt=at.id)))
        before = queryset.filter(Q(**{f"{f}__lt": at.value}) | Q(**{f: at.value}, id__lte=at.id)).count()
    rows = list(rows[: size + 1])
    kept = rows[:size]
    if max_bytes is not None:
        total = 0
        for count, row in enumerate(kept, start=1):
            total += weigh(row)
            if total > max_bytes:
                kept = kept[:count]
                break
    page = KeysetPage(rows=kept, before=before)
    if len(rows) > len(kept):
        page.older = Cursor(getattr(kept[-1], f), kept[-1].id, scope=scope)
    return page
