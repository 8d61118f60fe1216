"""Keyset (cursor) pagination, newest first, on (a timestamp, id).

The position is the last row's (timestamp, id) pair: unique because of the id, so a
page never repeats or skips a row because others arrived meanwhile (offset paging
would). The cursor is opaque to clients: base64url of "direction|timestamp|id".
"""

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from rest_framework.utils.urls import replace_query_param

from audit.validation import format_timestamp, parse_timestamp

CURSOR_PARAM = "cursor"
PAGE_SIZE_PARAM = "page_size"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class QueryParamError(ValueError):
    """A query parameter the API cannot use; `errors` maps its name to messages."""

    def __init__(self, name, message):
        self.errors = {name: [message]}
        super().__init__(f"{name}: {message}")


@dataclass(frozen=True)
class Cursor:
    value: datetime
    id: int
    backwards: bool = False

    def encode(self) -> str:
        raw = f"{'p' if self.backwards else 'n'}|{format_timestamp(self.value)}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            direction, value, row_id = raw.split("|")
            if direction not in ("n", "p"):
                raise ValueError(direction)
            return cls(value=parse_timestamp(value), id=int(row_id), backwards=direction == "p")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise QueryParamError(CURSOR_PARAM, "is not a cursor this API gave out") from None


@dataclass
class KeysetPage:
    items: list
    next_url: str | None = None
    previous_url: str | None = None
    links: dict = field(default_factory=dict)

    @property
    def link_header(self) -> str:
        """RFC 8288 Link header (for CSV and NDJSON pages, which have no envelope)."""
        return ", ".join(f'<{url}>; rel="{rel}"' for rel, url in self.links.items())


class KeysetPagination:
    def __init__(self, *, field: str):
        self.field = field

    def page_size(self, request) -> int:
        text = request.query_params.get(PAGE_SIZE_PARAM)
        if text is None or text == "":
            return DEFAULT_PAGE_SIZE
        if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
            raise QueryParamError(PAGE_SIZE_PARAM, f"must be an integer from 1 to {MAX_PAGE_SIZE}")
        return int(text)

    def paginate(self, queryset, request) -> KeysetPage:
        size = self.page_size(request)
        text = request.query_params.get(CURSOR_PARAM)
        cursor = Cursor.decode(text) if text else None
        f = self.field
        if cursor is None:
            rows = list(queryset.order_by(f"-{f}", "-id")[: size + 1])
        elif not cursor.backwards:
            # value <= v narrows the index range; the OR breaks ties by id.
            older = Q(**{f"{f}__lte": cursor.value}) & (Q(**{f"{f}__lt": cursor.value}) | Q(id__lt=cursor.id))
            rows = list(queryset.filter(older).order_by(f"-{f}", "-id")[: size + 1])
        else:
            newer = Q(**{f"{f}__gte": cursor.value}) & (Q(**{f"{f}__gt": cursor.value}) | Q(id__gt=cursor.id))
            rows = list(queryset.filter(newer).order_by(f, "id")[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        if cursor is not None and cursor.backwards:
            rows.reverse()

        newer_exists = cursor is not None and (not cursor.backwards or more)
        older_exists = cursor is not None and cursor.backwards or more
        page = KeysetPage(items=rows)
        if older_exists:
            last = (getattr(rows[-1], f), rows[-1].id) if rows else (cursor.value, cursor.id)
            page.next_url = self._url(request, Cursor(*last))
            page.links["next"] = page.next_url
        if newer_exists:
            first = (getattr(rows[0], f), rows[0].id) if rows else (cursor.value, cursor.id)
            page.previous_url = self._url(request, Cursor(*first, backwards=True))
            page.links["prev"] = page.previous_url
        return page

    def _url(self, request, cursor: Cursor) -> str:
        url = request.build_absolute_uri()
        return replace_query_param(url, CURSOR_PARAM, cursor.encode())

