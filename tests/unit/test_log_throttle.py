"""Throttled and outage log lines: one line per cause per interval, with counts; an outage
begins, reminds and ends in three kinds of line, never one per failure."""

from __future__ import annotations

import logging

import pytest

from bot.log_throttle import Outage, Throttle

log = logging.getLogger("bot.test_log_throttle")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == log.name]


def test_throttle_logs_a_cause_once_per_interval_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cause repeated 100 times in a minute gives one line; the next minute's line says
    how many were suppressed. Another cause is not held back by the first."""
    clock = Clock()
    throttle = Throttle(log, interval_s=60, clock=clock)
    caplog.set_level(logging.WARNING, logger=log.name)
    written = [throttle.log("bad-signature", "refused: bad signature") for _ in range(100)]
    assert written.count(True) == 1
    assert throttle.log("stale", "refused: stale timestamp")
    clock.now += 61
    assert throttle.log("bad-signature", "refused: bad signature")
    lines = records(caplog)
    assert [r.getMessage() for r in lines] == [
        "refused: bad signature",
        "refused: stale timestamp",
        "refused: bad signature",
    ]
    assert not hasattr(lines[0], "suppressed")
    assert lines[2].suppressed == 99  # type: ignore[attr-defined]
    assert all(r.exc_info is None for r in lines)


def test_outage_begins_reminds_and_ends(caplog: pytest.LogCaptureFixture) -> None:
    """Ten minutes of failures every 5 s: one line when it begins, one reminder a minute,
    one line when it ends, with duration and count; no traceback."""
    clock = Clock()
    outage = Outage(log, "redis", interval_s=60, clock=clock)
    caplog.set_level(logging.WARNING, logger=log.name)
    outage.succeeded()  # nothing to say while all is well
    assert not records(caplog)
    for _ in range(120):
        outage.failed(ConnectionError("Connection refused\nmore detail"))
        clock.now += 5
    assert outage.down
    outage.succeeded()
    outage.succeeded()
    lines = records(caplog)
    messages = [r.getMessage() for r in lines]
    assert messages[0] == "redis unavailable: ConnectionError: Connection refused"
    assert messages[1:-1] == ["redis still unavailable: ConnectionError: Connection refused"] * 9
    assert messages[-1] == "redis available again"
    assert lines[-1].down_s == 600.0 and lines[-1].failures == 120  # type: ignore[attr-defined]
    assert [r.levelno for r in lines[:-1]] == [logging.ERROR] * 10
    assert all(r.exc_info is None for r in lines)
    assert not outage.down


def test_throttle_carries_a_traceback_only_on_the_lines_it_writes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A recurring bug logged with its exception shows the traceback once per interval."""
    clock = Clock()
    throttle = Throttle(log, level=logging.ERROR, interval_s=60, clock=clock)
    caplog.set_level(logging.ERROR, logger=log.name)
    for _ in range(5):
        try:
            raise KeyError("missing")
        except KeyError as e:
            throttle.log("sweep", "sweep failed: %s", type(e).__name__, exc_info=e)
    lines = records(caplog)
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR
    assert lines[0].exc_info is not None and lines[0].exc_info[0] is KeyError
