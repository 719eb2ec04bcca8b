"""Durations and grant ids: the small parsers everything else leans on."""

from __future__ import annotations

import pytest

from bot.domain.duration import format_duration, format_utc, parse_duration
from bot.domain.ids import is_grant_id, new_grant_id
from bot.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("1D2H", 93600)],
)
def test_durations_people_type(text: str, seconds: int) -> None:
    """Each unit and a compound parse to the right number of seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "10x", "30m1h", "1h1h", "0m", "٣٠m", "2 h", "367d", "m", "-5m"]
)
def test_bad_durations_are_usage_errors(text: str) -> None:
    """Malformed, zero, out-of-order, non-ASCII-digit, split and over-a-year
    durations are refused."""
    with pytest.raises(UsageError):
        parse_duration(text)


def test_format_round_trips() -> None:
    """format_duration renders largest units first and parses back."""
    assert format_duration(5400) == "1h30m"
    assert format_duration(0) == "0s"
    for s in (1, 59, 61, 3600, 86401, 93784):
        assert parse_duration(format_duration(s)) == s


def test_moments_print_in_utc_to_the_second() -> None:
    """The CLI and the report print a moment one way, in UTC; a missing one as asked."""
    assert format_utc(1_764_492_971.9) == "2025-11-30 08:56:11Z"
    assert format_utc(None) == ""
    assert format_utc(None, missing="-") == "-"


def test_grant_ids_are_well_formed_and_checked_exactly() -> None:
    """New ids match the shape; a trailing newline or a confusable letter does not."""
    gid = new_grant_id()
    assert is_grant_id(gid)
    assert not is_grant_id(gid + "\n")
    assert not is_grant_id("g-7k3p9xq0")  # 0 is not in the alphabet
