"""The parsed form of a query: a small tree the compiler turns into one ORM condition.

Every term remembers where it stands in the text (`start`, `end`: offsets), so a facet
click can add or remove exactly that term and an error can point at it.
"""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Pattern:
    """A value to match: literal text between `*` wildcards (one chunk: no wildcard)."""

    chunks: tuple[str, ...]

    @property
    def wildcard(self) -> bool:
        return len(self.chunks) > 1

    @property
    def text(self) -> str:
        return "*".join(self.chunks)

    def lower(self) -> "Pattern":
        return Pattern(tuple(chunk.lower() for chunk in self.chunks))


@dataclass(frozen=True)
class Term:
    start: int
    end: int


@dataclass(frozen=True)
class Text(Term):
    """A bare word or a "quoted phrase": searched in the event's full text."""

    pattern: Pattern


@dataclass(frozen=True)
class Match(Term):
    """`actor:alice*,bob`: the field matches any of the patterns, case-insensitively."""

    qualifier: str
    patterns: tuple[Pattern, ...]


@dataclass(frozen=True)
class MetadataMatch(Term):
    """`metadata.env:production,staging`: the key equals any of the values (typed)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Compare(Term):
    """`status:>=500`: the number satisfies any of the (operator, number) clauses."""

    qualifier: str
    clauses: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Window(Term):
    """`since:24h` / `until:<RFC 3339>`: a bound on the event's timestamp."""

    qualifier: str
    moment: datetime


@dataclass(frozen=True)
class Presence(Term):
    """`has:rule` / `no:actor`: any of the fields is present (or, for no:, null or empty)."""

    present: bool
    fields: tuple[str, ...]  # PRESENCE_FIELDS names, or "metadata.<key>"


@dataclass(frozen=True)
class Not(Term):
    term: Term


@dataclass(frozen=True)
class Query:
    text: str
    terms: tuple[Term, ...]
