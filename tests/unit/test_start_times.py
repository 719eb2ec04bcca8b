"""Scheduled starts read in the requester's zone (bot.domain.start): `at`, `in`, `on`, the
clocks going forward and back, the past, max_lead_time and the window."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.domain.duration import parse_duration
from bot.domain.start import (
    StartSpec,
    check_lead_time,
    issue_until,
    parse_start_text,
    resolve_start,
    show_time,
    window_open,
)
from bot.errors import PolicyDenied, UsageError

BERLIN = "Europe/Berlin"


def ts(text: str, tz: str = BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def test_at_is_the_next_such_wall_clock_time() -> None:
    """`at 14:00` is today's 14:00 in the zone while it is ahead, else tomorrow's."""
    morning = ts("2026-11-30 09:00")
    assert resolve_start(StartSpec("at", clock=(14, 0)), tz=BERLIN, now=morning) == ts(
        "2026-11-30 14:00"
    )
    evening = ts("2026-11-30 15:00")
    assert resolve_start(StartSpec("at", clock=(14, 0)), tz=BERLIN, now=evening) == ts(
        "2026-12-01 14:00"
    )


def test_the_same_words_mean_different_instants_in_different_zones() -> None:
    now = ts("2026-11-30 00:30", "UTC")
    berlin = resolve_start(StartSpec("at", clock=(9, 0)), tz=BERLIN, now=now)
    new_york = resolve_start(StartSpec("at", clock=(9, 0)), tz="America/New_York", now=now)
    assert new_york - berlin == 6 * 3600


def test_in_counts_from_now_whatever_the_zone() -> None:
    assert resolve_start(StartSpec("in", delay_s=7200), tz=None, now=1000.0) == 8200.0


def test_on_a_day_is_that_wall_clock_time_and_never_in_the_past() -> None:
    spec = StartSpec("on", day=date(2026, 12, 1), clock=(9, 0))
    assert resolve_start(spec, tz=BERLIN, now=ts("2026-11-30 12:00")) == ts("2026-12-01 09:00")
    with pytest.raises(UsageError, match="in the past in Europe/Berlin"):
        resolve_start(spec, tz=BERLIN, now=ts("2026-12-01 09:00"))


def test_a_time_the_clocks_skip_is_refused_and_a_repeated_one_takes_the_first() -> None:
    """Berlin skips 02:00-03:00 on 2027-03-28 and repeats 02:00-03:00 on 2026-10-25."""
    skipped = StartSpec("on", day=date(2027, 3, 28), clock=(2, 30))
    with pytest.raises(UsageError, match="does not exist in Europe/Berlin"):
        resolve_start(skipped, tz=BERLIN, now=ts("2027-03-01 00:00"))
    twice = StartSpec("on", day=date(2026, 10, 25), clock=(2, 30))
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()  # 02:30 CEST
    assert resolve_start(twice, tz=BERLIN, now=ts("2026-10-01 00:00")) == first


def test_at_a_skipped_time_moves_to_the_next_day_it_exists() -> None:
    now = ts("2027-03-28 01:00")
    start = resolve_start(StartSpec("at", clock=(2, 30)), tz=BERLIN, now=now)
    assert start == ts("2027-03-29 02:30")


def test_an_unknown_zone_is_read_as_utc_and_shown_so() -> None:
    start = resolve_start(StartSpec("at", clock=(9, 0)), tz="Mars/Olympus", now=0.0)
    assert start == 9 * 3600
    assert show_time(start, "Mars/Olympus") == "1970-01-01 09:00 UTC (UTC)"


def test_times_are_shown_back_with_the_zone() -> None:
    assert show_time(ts("2026-12-01 09:00"), BERLIN) == "2026-12-01 09:00 CET (Europe/Berlin)"
    assert show_time(ts("2026-07-01 09:00"), BERLIN) == "2026-07-01 09:00 CEST (Europe/Berlin)"


def test_max_lead_time_caps_how_far_ahead_a_start_may_be() -> None:
    check_lead_time(7 * 86_400, now=0, max_lead_time_s=7 * 86_400, rule="orders-db read")
    with pytest.raises(PolicyDenied, match="at most 7d ahead \\(max_lead_time\\)"):
        check_lead_time(7 * 86_400 + 1, now=0, max_lead_time_s=7 * 86_400, rule="orders-db read")


def test_the_duration_counts_from_the_start_and_the_window_closes_then() -> None:
    """Issued at its start it lasts its duration; issued late (after downtime) it keeps only
    the rest of its window; once the window closed it may not be issued."""
    assert issue_until(starts_at=None, duration_s=3600, now=100.0) == 3700.0
    assert issue_until(starts_at=100.0, duration_s=3600, now=100.0) == 3700.0
    assert issue_until(starts_at=100.0, duration_s=3600, now=1900.0) == 3700.0
    assert window_open(starts_at=100.0, duration_s=3600, now=3699.0)
    assert not window_open(starts_at=100.0, duration_s=3600, now=3700.0)


@pytest.mark.parametrize(
    ("typed", "spec"),
    [
        ("14:00", StartSpec("at", clock=(14, 0))),
        ("at 7:05", StartSpec("at", clock=(7, 5))),
        ("in 2h", StartSpec("in", delay_s=7200)),
        ("2026-12-01 09:00", StartSpec("on", day=date(2026, 12, 1), clock=(9, 0))),
        ("on 2026-12-01 09:00", StartSpec("on", day=date(2026, 12, 1), clock=(9, 0))),
    ],
)
def test_the_forms_start_field_takes_the_commands_words(typed: str, spec: StartSpec) -> None:
    assert parse_start_text(typed, parse_delay=parse_duration) == spec


@pytest.mark.parametrize("typed", ["noon", "at 24:00", "in", "2026-02-30 09:00", "on 09:00"])
def test_the_forms_start_field_refuses_what_is_not_a_start(typed: str) -> None:
    with pytest.raises(UsageError, match="write the start like"):
        parse_start_text(typed, parse_delay=parse_duration)


@pytest.mark.parametrize(
    ("lead", "shown"),
    [(8 * 86_400 - 0.4, "8d"), (8 * 86_400 - 2.5, "8d"), (7 * 86_400 + 10, "7d10s")],
)
def test_a_refused_lead_is_said_as_it_was_asked(lead: float, shown: str) -> None:
    """`in 8d` is resolved a moment before it is checked: it is said as 8d, not 7d23h59m59s;
    a lead just over the cap is said to the second, so that it reads as over it."""
    with pytest.raises(PolicyDenied, match=f"this start is {shown} ahead$"):
        check_lead_time(100 + lead, now=100, max_lead_time_s=7 * 86_400, rule="orders-db read")
