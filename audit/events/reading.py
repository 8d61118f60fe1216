"""Reading many events at once, in constant memory and one consistent snapshot."""

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice

from django.db import connections, transaction
from django.db.models import QuerySet

CHUNK_SIZE = 2000


@contextmanager
def read_snapshot(using: str = "default"):
    """On PostgreSQL, read inside one transaction: a consistent snapshot, and a plain
    server-side cursor whose rows flow while the query runs (in autocommit Django
    declares it WITH HOLD, which materializes the whole result first). savepoint=False:
    one transaction in production, no extra statements inside a test's. Not on SQLite:
    its atomic blocks begin IMMEDIATE and would hold off ingest for the whole read."""
    if connections[using].vendor == "postgresql":
        with transaction.atomic(using=using, savepoint=False):
            yield
    else:
        yield


def iter_rows(queryset: QuerySet, *, chunk_size: int = CHUNK_SIZE) -> Iterator:
    """Every row of `queryset`, fetched `chunk_size` at a time, in one snapshot."""
    with read_snapshot(queryset.db):
        yield from queryset.iterator(chunk_size=chunk_size)


def iter_chunks(queryset: QuerySet, *, chunk_size: int = CHUNK_SIZE) -> Iterator[list]:
    """The rows of `queryset` in lists of `chunk_size`, in one snapshot."""
    rows = iter_rows(queryset, chunk_size=chunk_size)
    while chunk := list(islice(rows, chunk_size)):
        yield chunk
