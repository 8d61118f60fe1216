"""Keyset ("older/newer") pages over a queryset ordered newest first on (time, id).

The cursor is the (time, id) of the row at a page edge, opaque to the user; a
page is one indexed range scan however deep it is, and rows arriving meanwhile
never shift what "older" means.
"""

import base64
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q, QuerySet


class BadCursor(ValueError):
    pass


@dataclass
class KeysetPage:
    rows: list = field(default_factory=list)
    older: str | None = None  # cursor for the next page back in time
    newer: str | None = None  # cursor for the page before this one


def cursor_encode(*, moment: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{moment.isoformat()}|{pk}".encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, pk = text.rsplit("|", 1)
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, int(pk)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadCursor("this page link is not valid; start again from the newest") from error


def keyset_page(
    *, queryset: QuerySet, time_field: str, size: int, before: str | None = None, after: str | None = None
) -> KeysetPage:
    """`size` rows older than `before`, or newer than `after`, or the newest; newest first."""
    if after:
        moment, pk = cursor_decode(after)
        newer_rows = Q(**{f"{time_field}__gt": moment}) | Q(**{time_field: moment, "pk__gt": pk})
        rows = list(queryset.filter(newer_rows).order_by(time_field, "pk")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        page = KeysetPage(rows=rows)
        page.newer = _edge(rows[0], time_field) if rows and more_newer else None
        page.older = _edge(rows[-1], time_field) if rows else None
        return page
    if before:
        moment, pk = cursor_decode(before)
        older_rows = Q(**{f"{time_field}__lt": moment}) | Q(**{time_field: moment, "pk__lt": pk})
        queryset = queryset.filter(older_rows)
    rows = list(queryset.order_by(f"-{time_field}", "-pk")[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    page = KeysetPage(rows=rows)
    page.older = _edge(rows[-1], time_field) if rows and more_older else None
    page.newer = _edge(rows[0], time_field) if rows and before else None
    return page


def _edge(row, time_field) -> str:
    return cursor_encode(moment=getattr(row, time_field), pk=row.pk)
