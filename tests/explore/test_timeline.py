from datetime import timedelta

from audit.explore.timeline import MIN_BAR, SCALE, format_ms, timeline_build
from tests.factories import BASE_TIME


class _Call:
    """Just the fields the timeline reads."""

    def __init__(self, offset_ms, duration_ms, slug="github-prod", decision="allow"):
        self.timestamp = BASE_TIME + timedelta(milliseconds=offset_ms)
        self.duration_ms = duration_ms
        self.slug = slug
        self.decision = decision


def test_bars_sit_at_their_offsets_with_widths_proportional_to_duration():
    calls = [_Call(0, 200), _Call(300, 100, slug="slack-prod"), _Call(800, 200)]
    timeline = timeline_build(events=calls)
    assert timeline.span_ms == 1000
    assert [(c.x, c.width) for c in timeline.calls] == [(0, 200), (300, 100), (800, 200)]
    assert [c.position for c in timeline.calls] == [1, 2, 3]
    # Colours follow connections in order of first appearance.
    assert [c.colour for c in timeline.calls] == [0, 1, 0]
    assert timeline.connections == [("github-prod", 0), ("slack-prod", 1)]


def test_gaps_between_calls_are_measured_and_long_ones_called_out():
    calls = [_Call(0, 100), _Call(150, 50), _Call(5200, 100)]
    timeline = timeline_build(events=calls)
    first, second, third = timeline.calls
    assert first.gap_before_ms == 0
    assert second.gap_before_ms == 50 and not second.gap_notable
    assert third.gap_before_ms == 5000 and third.gap_notable
    unit = SCALE / timeline.span_ms
    assert third.gap_x == round(200 * unit, 2)
    assert third.gap_end == round(5200 * unit, 2)


def test_overlapping_and_instant_calls_still_show():
    calls = [_Call(0, 1000), _Call(10, 0), _Call(20, None)]
    timeline = timeline_build(events=calls)
    assert all(c.width >= MIN_BAR for c in timeline.calls)
    assert all(c.gap_before_ms == 0 for c in timeline.calls)
    assert all(c.x + c.width <= SCALE for c in timeline.calls)


def test_a_single_instant_call_and_no_calls():
    timeline = timeline_build(events=[_Call(0, 0)])
    assert timeline.calls[0].x == 0 and timeline.calls[0].width == MIN_BAR
    assert timeline_build(events=[]).calls == []


def test_durations_read_like_people_write_them():
    assert [format_ms(v) for v in (0, 4.25, 95, 1234, 12_000, 61_000, 3_600_000)] == [
        "0 ms", "4.2 ms", "95 ms", "1.2 s", "12 s", "1 min 1 s", "1 h",
    ]
