"""Static rotations: who is on call is pure arithmetic on the time passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.policy.schema import StaticSchedule
from bot.oncall.static import StaticSource, on_call_at, rotation_epoch_s, shift_at

DAY_S = 86_400
WEEK_S = 7 * DAY_S


def schedule(**overrides: Any) -> StaticSchedule:
    """A weekly rotation of A, B, C from Monday 2026-01-05 09:00 UTC unless overridden."""
    fields: dict[str, Any] = {
        "type": "static",
        "members": ["U0AAA", "U0BBB", "U0CCC"],
        "start": "2026-01-05",
        **overrides,
    }
    return StaticSchedule.model_validate(fields)


def at(text: str) -> float:
    """Unix seconds for an ISO time written in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


EPOCH = at("2026-01-05T09:00:00")


def test_defaults_are_weekly_at_nine_utc() -> None:
    """Without handoff or length, shifts are a week long and change at 09:00 UTC."""
    s = schedule()
    assert s.length == WEEK_S and s.handoff == time(9, 0)
    assert rotation_epoch_s(s) == EPOCH


def test_nobody_before_the_start() -> None:
    """Before the first handoff on the start date nobody is on call, even a second before."""
    s = schedule()
    assert on_call_at(s, EPOCH - 1) is None
    assert on_call_at(s, EPOCH - 0.001) is None
    assert on_call_at(s, at("2026-01-05T00:00:00")) is None  # start date, before handoff
    assert shift_at(s, at("2025-06-01T12:00:00")) is None


def test_first_shift_goes_to_the_first_member() -> None:
    """At the very first handoff the first member in the list takes the shift."""
    shift = shift_at(schedule(), EPOCH)
    assert shift is not None
    assert (shift.member, shift.number, shift.start_s, shift.end_s) == (
        "U0AAA",
        0,
        EPOCH,
        EPOCH + WEEK_S,
    )


def test_handoff_instant_belongs_to_the_incoming_member() -> None:
    """Shifts are half-open: the outgoing member's last instant is just before the handoff."""
    s = schedule()
    handoff = EPOCH + WEEK_S
    assert on_call_at(s, handoff - 0.001) == "U0AAA"
    assert on_call_at(s, handoff - 1) == "U0AAA"
    assert on_call_at(s, handoff) == "U0BBB"
    assert on_call_at(s, handoff + 0.001) == "U0BBB"


def test_members_rotate_in_list_order_and_wrap_around() -> None:
    """Shift k goes to members[k % n]: A, B, C, then A again."""
    s = schedule()
    expected = ["U0AAA", "U0BBB", "U0CCC", "U0AAA", "U0BBB", "U0CCC", "U0AAA"]
    got = [on_call_at(s, EPOCH + k * WEEK_S + 3_600) for k in range(len(expected))]
    assert got == expected


def test_list_order_not_sorting_decides() -> None:
    """The rotation follows the list as written, not alphabetical order."""
    s = schedule(members=["U0ZED", "U0ALF"])
    assert on_call_at(s, EPOCH) == "U0ZED"
    assert on_call_at(s, EPOCH + WEEK_S) == "U0ALF"


def test_a_single_member_is_always_on_call_after_start() -> None:
    """With one member the rotation wraps onto them every shift."""
    s = schedule(members=["U0SOLO"])
    assert {on_call_at(s, EPOCH + k * WEEK_S) for k in range(10)} == {"U0SOLO"}


def test_repeated_members_take_each_of_their_slots() -> None:
    """A member listed twice is on call for both slots."""
    s = schedule(members=["U0AAA", "U0BBB", "U0AAA"], length="1d")
    assert [on_call_at(s, EPOCH + k * DAY_S) for k in range(4)] == [
        "U0AAA",
        "U0BBB",
        "U0AAA",
        "U0AAA",
    ]


def test_handoff_time_of_day_is_utc() -> None:
    """A daily rotation handing off at 17:30 changes at 17:30 UTC each day."""
    s = schedule(handoff="17:30", length="1d", members=["U0AAA", "U0BBB"])
    assert on_call_at(s, at("2026-01-05T17:29:59")) is None
    assert on_call_at(s, at("2026-01-05T17:30:00")) == "U0AAA"
    assert on_call_at(s, at("2026-01-06T17:29:59")) == "U0AAA"
    assert on_call_at(s, at("2026-01-06T17:30:00")) == "U0BBB"
    assert on_call_at(s, at("2026-01-07T17:30:00")) == "U0AAA"


def test_yaml_base60_handoff_is_read_as_a_time() -> None:
    """An unquoted 9:30 in YAML arrives as 570 and still means 09:30."""
    s = schedule(handoff=570)
    assert rotation_epoch_s(s) == at("2026-01-05T09:30:00")


def test_shift_lengths_that_do_not_divide_a_day() -> None:
    """A 10-hour rotation hands off every 10 hours from the epoch, whatever the time of day."""
    s = schedule(length="10h")
    assert on_call_at(s, EPOCH + 10 * 3_600 - 1) == "U0AAA"
    assert on_call_at(s, EPOCH + 10 * 3_600) == "U0BBB"
    assert on_call_at(s, EPOCH + 30 * 3_600) == "U0AAA"


def test_far_future_is_still_exact_at_the_boundary() -> None:
    """Decades after the start, a handoff instant still lands in the new shift."""
    s = schedule(length="1d", members=["U0AAA", "U0BBB"])
    k = 365 * 40
    assert on_call_at(s, EPOCH + k * DAY_S) == ("U0AAA" if k % 2 == 0 else "U0BBB")
    assert on_call_at(s, EPOCH + k * DAY_S - 0.001) == ("U0BBB" if k % 2 == 0 else "U0AAA")


def test_leap_day_and_year_end_do_not_shift_handoffs() -> None:
    """UTC has no DST: a daily rotation across 29 Feb and New Year keeps its handoff time."""
    s = schedule(start="2028-02-27", length="1d", members=["U0AAA", "U0BBB"])
    epoch = at("2028-02-27T09:00:00")
    assert on_call_at(s, at("2028-02-29T09:00:00")) == "U0AAA"  # shift 2
    assert on_call_at(s, at("2028-03-01T08:59:59")) == "U0AAA"
    assert on_call_at(s, at("2028-03-01T09:00:00")) == "U0BBB"
    days = (at("2029-01-01T09:00:00") - epoch) // DAY_S
    assert on_call_at(s, at("2029-01-01T09:00:00")) == ["U0AAA", "U0BBB"][int(days) % 2]


async def test_source_answers_a_set_of_one_or_none() -> None:
    """The StaticSource wraps the maths: one member after the start, nobody before."""
    source = StaticSource(schedule())
    assert await source.on_call(now=EPOCH - 1) == frozenset()
    assert await source.on_call(now=EPOCH + WEEK_S) == frozenset({"U0BBB"})


def test_a_zero_length_is_refused_rather_than_divided_by() -> None:
    """A rotation built around validation with length 0 raises instead of dividing by 0."""
    bad = schedule().model_copy(update={"length": 0})
    with pytest.raises(ValueError, match="positive"):
        shift_at(bad, EPOCH)


# --- properties --------------------------------------------------------------------------

members_st = st.lists(st.from_regex(r"U0[A-Z0-9]{3}", fullmatch=True), min_size=1, max_size=6)
length_st = st.integers(min_value=60, max_value=30 * DAY_S)
start_st = st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31))
handoff_st = st.tuples(st.integers(0, 23), st.integers(0, 59))


@st.composite
def rotations(draw: st.DrawFn) -> StaticSchedule:
    """Any valid rotation, written as policies.yaml would write it."""
    hour, minute = draw(handoff_st)
    return schedule(
        members=draw(members_st),
        handoff=f"{hour:02d}:{minute:02d}",
        length=f"{draw(length_st)}s",
        start=draw(start_st).isoformat(),
    )


@given(rotations(), st.floats(min_value=0, max_value=5e8, allow_nan=False))
def test_exactly_one_member_at_any_instant_after_start(s: StaticSchedule, after: float) -> None:
    """At any instant at or after the epoch exactly one listed member is on call."""
    now = rotation_epoch_s(s) + after
    shift = shift_at(s, now)
    assert shift is not None
    assert shift.member in s.members
    assert shift.start_s <= now < shift.end_s
    assert shift.member == s.members[shift.number % len(s.members)]


@given(rotations(), st.floats(min_value=1e-3, max_value=1e8, allow_nan=False))
def test_nobody_at_any_instant_before_start(s: StaticSchedule, before: float) -> None:
    """At any instant before the epoch nobody is on call."""
    assert on_call_at(s, rotation_epoch_s(s) - before) is None


@given(rotations(), st.integers(min_value=0, max_value=10_000), st.data())
def test_member_changes_only_at_handoffs(s: StaticSchedule, k: int, data: st.DataObject) -> None:
    """Within a shift the member never changes; shift boundaries are exactly the handoffs."""
    epoch = rotation_epoch_s(s)
    start, end = epoch + k * s.length, epoch + (k + 1) * s.length
    inside = data.draw(st.integers(min_value=start, max_value=end - 1))
    expected = s.members[k % len(s.members)]
    assert on_call_at(s, start) == expected
    assert on_call_at(s, inside) == expected
    assert on_call_at(s, end - 1) == expected
    assert on_call_at(s, end) == s.members[(k + 1) % len(s.members)]
    if s.length % DAY_S == 0:  # whole-day shifts hand off at the handoff time of day
        boundary = datetime.fromtimestamp(end, tz=UTC)
        assert boundary.time() == s.handoff
