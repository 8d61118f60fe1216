"""Lay a trace's calls out on a timeline: server-side geometry for the chain page.

The page's CSP forbids inline style, so bars are SVG rects whose x/width are
presentation attributes computed here, in a 0..1000 user-unit coordinate space.
"""

from dataclasses import dataclass
from datetime import datetime

from audit.events.models import AuditEvent

SCALE = 1000  # SVG user units across the whole trace
MIN_BAR = 4  # an instantaneous call still shows as a visible sliver
PALETTE_SIZE = 8  # connection colours conn-0..conn-7 in lens.css
# A pause between calls is called out when it is at least this long and this share of the trace.
GAP_MIN_MS = 250
GAP_MIN_SHARE = 0.05


@dataclass(frozen=True)
class TimelineCall:
    event: AuditEvent
    position: int  # 1-based, in chain order
    offset_ms: float  # from the trace start
    duration_ms: float
    x: float
    width: float
    colour: int  # index into the connection palette
    gap_before_ms: float  # idle time since the previous call ended (0 if overlapping)
    gap_x: float  # where that gap starts, for drawing it
    gap_width: float
    gap_end: float
    gap_notable: bool


@dataclass(frozen=True)
class Timeline:
    calls: list[TimelineCall]
    span_ms: float
    connections: list[tuple[str, int]]  # (slug, colour) in order of first appearance
    ticks: list[tuple[float, str]]  # (x, label)


def _ms(delta) -> float:
    return delta.total_seconds() * 1000.0


def format_ms(value: float) -> str:
    """A duration for people: 95 ms, 1.2 s, 3 min 4 s."""
    if value < 1000:
        return f"{value:.0f} ms" if value >= 10 or value == int(value) else f"{value:.1f} ms"
    seconds = value / 1000.0
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _ticks(span_ms: float) -> list[tuple[float, str]]:
    if span_ms <= 0:
        return [(0.0, "0")]
    return [(SCALE * i / 4, "0" if i == 0 else format_ms(span_ms * i / 4)) for i in range(5)]


def timeline_build(*, events: list[AuditEvent], start: datetime | None = None, first_position: int = 1) -> Timeline:
    """Place calls (already in chain order) at their offsets; widths are proportional to duration.

    `first_position` numbers the calls when they are a later page of a long chain."""
    if not events:
        return Timeline(calls=[], span_ms=0.0, connections=[], ticks=_ticks(0))
    start = start or min(event.timestamp for event in events)
    colours: dict[str, int] = {}
    for event in events:
        colours.setdefault(event.slug, len(colours) % PALETTE_SIZE)
    spans = [(_ms(event.timestamp - start), float(event.duration_ms or 0.0)) for event in events]
    span_ms = max((offset + duration for offset, duration in spans), default=0.0) or 1.0
    unit = SCALE / span_ms

    calls = []
    busy_until = 0.0  # end of the latest call so far, to measure the idle gap before the next
    for position, (event, (offset, duration)) in enumerate(zip(events, spans, strict=True), start=first_position):
        x = min(offset * unit, SCALE - MIN_BAR)
        width = max(duration * unit, MIN_BAR)
        gap = max(offset - busy_until, 0.0) if position > first_position else 0.0
        calls.append(
            TimelineCall(
                event=event,
                position=position,
                offset_ms=offset,
                duration_ms=duration,
                x=round(x, 2),
                width=round(min(width, SCALE - x), 2),
                colour=colours[event.slug],
                gap_before_ms=gap,
                gap_x=round(busy_until * unit, 2),
                gap_width=round(gap * unit, 2),
                gap_end=round((busy_until + gap) * unit, 2),
                gap_notable=gap >= GAP_MIN_MS and gap >= GAP_MIN_SHARE * span_ms,
            )
        )
        busy_until = max(busy_until, offset + duration)
    return Timeline(calls=calls, span_ms=span_ms, connections=list(colours.items()), ticks=_ticks(span_ms))
