"""`/access request ... at 14:00 | in 2h | on 2026-12-01 09:00 ...`: the start clause."""

from __future__ import annotations

from datetime import date

import pytest

from bot.domain.start import StartSpec
from bot.errors import UsageError
from bot.slack.commands.grammar import MAX_ERROR_CHARS, parse_command
from bot.slack.commands.parsed import RequestAccess, RequestBundle


@pytest.mark.parametrize(
    ("text", "start", "reason"),
    [
        (
            "request orders-db read 1h at 14:00 fix INC-1",
            StartSpec("at", clock=(14, 0)),
            "fix INC-1",
        ),
        ("request sandbox 1h in 2h the deploy", StartSpec("in", delay_s=7200), "the deploy"),
        (
            "request sandbox 30m on 2026-12-01 09:00 release",
            StartSpec("on", day=date(2026, 12, 1), clock=(9, 0)),
            "release",
        ),
        ("request sandbox 30m AT 9:30 caps", StartSpec("at", clock=(9, 30)), "caps"),
    ],
)
def test_a_start_after_the_duration(text: str, start: StartSpec, reason: str) -> None:
    command = parse_command(text)
    assert isinstance(command, RequestAccess)
    assert command.start == start and command.reason == reason


@pytest.mark.parametrize(
    "text",
    [
        "request sandbox 1h in prod to fix it",
        "request sandbox 1h in INC-42 war room",
        "request sandbox 1h in bad shape",
        "request sandbox 1h fixing it at 14:00",
    ],
)
def test_words_that_only_read_like_a_start_are_the_reason(text: str) -> None:
    command = parse_command(text)
    assert isinstance(command, RequestAccess)
    assert command.start is None and command.reason == text.split(" ", 3)[3]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("request sandbox 1h at 25:00 x", '"25:00" is not a time of day'),
        ("request sandbox 1h in 0m x", "0m"),
        ("request sandbox 1h on 2026-02-30 09:00 x", '"2026-02-30" is not a date'),
        ("request sandbox 1h on 2026-12-01 x", "needs a time of day"),
        ("request sandbox 1h on 2026-12-01 25:00 x", '"25:00" is not a time of day'),
        ("request sandbox 1h at 2pm deploy window", '"at 2pm" is not a start'),
        ("request sandbox 1h at noon with Bob", '"at noon" is not a start'),
        ("request sandbox 1h on call today", '"on call" is not a start'),
        ("request sandbox 1h at 14:00:00 x", '"at 14:00:00" is not a start'),
        ("request sandbox 1h on 01/12/2026 09:00 x", '"on 01/12/2026" is not a start'),
        ("request sandbox 1h at bad", '"at bad" is not a start'),
        ("request sandbox 1h on bad", '"on bad" is not a start'),
        ("request sandbox 1h at", '"at" after the duration begins a start'),
        ("request sandbox 1h in -2h x", '"-2h" after "in" is not a duration'),
        ("request sandbox 1h in 2x x", '"2x" after "in" is not a duration'),
        ("request sandbox 1h in 90 x", '"90" after "in" is not a duration'),
        ("request sandbox 1h in 14:00 x", '"14:00" after "in" is not a duration'),
        ("request sandbox 1h in \u0663\u0660m x", 'after "in" is not a duration'),
        ("request sandbox 1h in 2h", "a reason is required"),
    ],
)
def test_a_start_meant_but_wrong_is_refused_saying_how(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_command(text)
    message = str(caught.value)
    assert says in message and len(message) <= MAX_ERROR_CHARS
    assert message.endswith("<reason...>")
    assert "at 14:00, in 2h or on 2026-12-01 09:00" in message or "reason is required" in message


@pytest.mark.parametrize(
    "start", ["at 14:00 x", "in 2h x", "on 2026-12-01 09:00 x", "at 2pm x", "in -2h x"]
)
def test_a_bundle_takes_no_start_and_says_so(start: str) -> None:
    """A bundle has no start clause: words that read as one are refused, not filed now as
    the reason."""
    with pytest.raises(UsageError, match="a bundle starts when approved and takes no start"):
        parse_command(f"request bundle incident-responder 1h {start}")


def test_a_bundle_reason_may_begin_with_in_and_a_word() -> None:
    command = parse_command("request bundle incident-responder 1h in prod outage")
    assert isinstance(command, RequestBundle) and command.reason == "in prod outage"
