"""Keyset ("older/newer") pages over a queryset ordered newest first on (a time, id),
for the browser pages and the API alike.

The cursor is the (time, id) of the row at a page edge and a direction, opaque to
the caller (base64url of "n|<time>|<id>" or "p|…"): a page is one indexed range scan
however deep it is, and rows arriving meanwhile never shift what "older" means.
"""

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q, QuerySet

from audit.events.wire import format_timestamp, parse_timestamp
from audit.explore.vocabulary import ParameterError

CURSOR_PARAM = "cursor"
PAGE_SIZE_PARAM = "page_size"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class BadPage(ParameterError):
    """A cursor or page size this paginator did not give out."""

    def __init__(self, name, message):
        super().__init__({name: [message]})


@dataclass(frozen=True)
class Cursor:
    value: datetime
    id: int
    backwards: bool = False  # toward newer rows

    def encode(self) -> str:
        raw = f"{'p' if self.backwards else 'n'}|{format_timestamp(self.value)}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            direction, value, row_id = raw.split("|")
            if direction not in ("n", "p") or not row_id.isascii():
                raise ValueError(direction)
            return cls(value=parse_timestamp(value), id=int(row_id), backwards=direction == "p")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise BadPage(CURSOR_PARAM, "is not a cursor Lens gave out; start again from the newest") from None


@dataclass
class KeysetPage:
    rows: list = field(default_factory=list)
    older: Cursor | None = None  # the next page back in time
    newer: Cursor | None = None  # the page before this one


def page_size(text: str | None) -> int:
    """A requested page size, 1–MAX_PAGE_SIZE (ASCII digits only)."""
    if text is None or text == "":
        return DEFAULT_PAGE_SIZE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise BadPage(PAGE_SIZE_PARAM, f"must be an integer from 1 to {MAX_PAGE_SIZE}")
    return int(text)


def keyset_page(*, queryset: QuerySet, time_field: str, size: int, cursor: str | None = None) -> KeysetPage:
    """`size` rows after `cursor` in its direction (or the newest), newest first."""
    position = Cursor.decode(cursor) if cursor else None
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
        page.older = Cursor(*edge)
    if position is not None and (not position.backwards or more):
        edge = (getattr(rows[0], f), rows[0].id) if rows else (position.value, position.id)
        page.newer = Cursor(*edge, backwards=True)
    return page
