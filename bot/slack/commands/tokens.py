"""The pieces of an ``/access`` command and how each is read, for the grammar
(:mod:`bot.slack.commands.grammar`) and its issue 13 additions
(:mod:`bot.slack.commands.variants`), under the grammar's contract: a value, or
:class:`~bot.errors.UsageError` ending in the subcommand's usage line. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, NamedTuple

from bot.domain.duration import parse_duration
from bot.errors import UsageError
from bot.slack.commands.escapes import escape_kind
from bot.slack.commands.reasons import MAX_REASON_CHARS, normalize_reason
from bot.slack.commands.usage import SUBCOMMAND_USAGE

#: The most characters of any one piece of user input an error message quotes.
ECHO_CHARS: Final = 40

#: A resource or role name, after lowercasing. Matched with fullmatch: ``$`` alone would accept
#: a trailing newline.
NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

#: After ``in`` right after a request's duration: a word read as a delay ("2h", "-2h", "2x",
#: "14:00", "90"), so a start, not a word of the reason ("in prod", "in INC-42"). Unicode \d
#: on purpose: "٣٠m" is a start written wrong, not a reason. Matched with ``match``.
DELAY_LIKE_RE: Final = re.compile(r"[+-]?\d")


class Token(NamedTuple):
    text: str
    start: int
    end: int


def show(text: str) -> str:
    """``text`` as an error may quote it: invisible characters spelled out, at most ECHO_CHARS."""
    # Spelling out bidi/zero-width characters stops a quoted token reordering the message.
    safe = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in text[: ECHO_CHARS + 1]
    )
    return safe if len(safe) <= ECHO_CHARS else safe[: ECHO_CHARS - 3] + "..."


def fail(problem: str, subcommand: str) -> UsageError:
    stop = "" if problem.endswith("?") else "."
    return UsageError(f"{problem}{stop} Usage: {SUBCOMMAND_USAGE[subcommand]}")


def reason(text: str, args: Sequence[Token], subcommand: str, *, required: bool) -> str:
    raw = text[args[0].start : args[-1].end] if args else ""
    normalized = normalize_reason(raw)
    if required and not normalized:
        raise UsageError(f"a reason is required: {SUBCOMMAND_USAGE[subcommand]}")
    if len(normalized) > MAX_REASON_CHARS:
        raise fail(
            f"the reason is {len(normalized)} characters; the limit is {MAX_REASON_CHARS}",
            subcommand,
        )
    return normalized


def name(token: Token, what: str, subcommand: str, example: str) -> str:
    kind = escape_kind(token.text)
    if kind is not None:
        raise fail(f"{what} must be a plain name like {example}, not {kind}", subcommand)
    # ASCII first: str.lower() maps e.g. the Kelvin sign to "k", which would slip through.
    lowered = token.text.lower() if token.text.isascii() else ""
    if NAME_RE.fullmatch(lowered) is None:
        raise fail(
            f"{what} must be a plain name like {example} (a-z, 0-9, - and _; at most 64),"
            f' not "{show(token.text)}"',
            subcommand,
        )
    return lowered


def duration(token: Token, subcommand: str) -> int:
    kind = escape_kind(token.text)
    if kind is not None:
        raise fail(f"duration must be written like 30m or 1h30m, not {kind}", subcommand)
    # parse_duration's \d would take non-ASCII digits ("٣٠m"), and it quotes its input as is.
    if not (token.text.isascii() and token.text.isprintable()):
        raise fail(
            f'"{show(token.text)}" is not a duration; use a number with d, h, m or s,'
            " e.g. 15m, 2h, 1h30m, 1d",
            subcommand,
        )
    try:
        return parse_duration(token.text)
    except UsageError as e:
        raise fail(str(e), subcommand) from e
