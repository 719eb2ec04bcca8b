"""The grammar of issue 13's additions to ``/access``, kept apart from the core grammar
(:mod:`bot.slack.commands.grammar`, which calls them; both read words with
:mod:`bot.slack.commands.tokens`)::

    request for <@U…> <resource> [<role>] <duration> <reason...>   RequestFor
    request bundle <name> <duration> <reason...>                   RequestBundle
    explain <resource> [<role>]                                    ExplainAccess

``for`` and ``bundle`` are keywords after ``request`` (resources so named can be asked for
only in the form). Same contract as :func:`~bot.slack.commands.grammar.parse_command`:
a command or :class:`~bot.errors.UsageError` ending in the usage line. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

from bot.slack.commands import tokens
from bot.slack.commands.parsed import (
    Command,
    ExplainAccess,
    RequestAccess,
    RequestBundle,
    RequestFor,
)
from bot.slack.commands.reasons import extract_tickets
from bot.slack.commands.tokens import Token

#: A user mention as Slack escapes it in a command (``should_escape``): ``<@U123|name>``.
_USER_MENTION_RE: Final = re.compile(r"<@([UW][A-Z0-9]{2,20})(?:\|[^<>]*)?>")


_NAME_THEM: Final = (
    "name the person as a mention, e.g. /access request for @dana orders-db read 1h INC-1 why"
)


def _word(token: Token) -> str:
    return token.text.lower() if token.text.isascii() else token.text


#: The grammar's reading of a plain ``request`` (its arguments after the subcommand).
PlainRequest = Callable[[str, Sequence[Token]], Command]


def request_variant(text: str, args: Sequence[Token], *, plain: PlainRequest) -> Command | None:
    """``request for …`` or ``request bundle …``; None when ``args`` are a plain request.
    ``plain`` reads the request made on someone's behalf."""
    if not args:
        return None
    word = _word(args[0])
    if word == "for":
        if len(args) == 1:  # not the resource "for": the keyword, with nobody named
            raise tokens.fail(_NAME_THEM, "request for")
        return _request_for(text, args[1:], plain=plain)
    if word == "bundle":
        return _request_bundle(text, args[1:])
    return None


def _request_for(text: str, args: Sequence[Token], *, plain: PlainRequest) -> Command:
    sub = "request for"
    match = _USER_MENTION_RE.fullmatch(args[0].text)
    if match is None:
        raise tokens.fail(_NAME_THEM, sub)
    inner = plain(text, args[1:])
    if not isinstance(inner, RequestAccess):
        raise tokens.fail("a request on someone's behalf asks for one resource", sub)
    return RequestFor(beneficiary=match.group(1), request=inner)


def _request_bundle(text: str, args: Sequence[Token]) -> Command:
    sub = "request bundle"
    if not args:
        raise tokens.fail("missing bundle name", sub)
    name = tokens.name(args[0], "bundle", sub, "incident-responder")
    if len(args) < 2:
        raise tokens.fail("missing duration", sub)
    duration_s = tokens.duration(args[1], sub)
    if len(args) > 2 and _names_someone(args[2:]):
        # Read as the reason it would file the bundle for the asker, not for them.
        raise tokens.fail(
            "a bundle cannot be asked for on someone's behalf; ask for each of its resources "
            "with /access request for @dana <resource> <role> <duration> <reason>, or have "
            "them ask for the bundle",
            sub,
        )
    if len(args) > 2 and _reads_as_a_start(args[2:]):
        # Read as the reason it would file the bundle now, not when the requester meant.
        raise tokens.fail(
            f'a bundle starts when approved and takes no start ("{tokens.show(args[2].text)}"'
            " right after the duration); ask without it, or begin the reason with another word",
            sub,
        )
    reason = tokens.reason(text, args[2:], sub, required=True)
    return RequestBundle(name, duration_s, reason, extract_tickets(reason))


def _names_someone(rest: Sequence[Token]) -> bool:
    """``for <@U…>`` (or a mention) right after the duration: meant as on someone's behalf."""
    first = rest[0].text
    if _USER_MENTION_RE.fullmatch(first):
        return True
    return _word(rest[0]) == "for" and len(rest) > 1 and bool(_USER_MENTION_RE.match(rest[1].text))


def _reads_as_a_start(rest: Sequence[Token]) -> bool:
    """What a plain request would read as a start (grammar._start_clause): ``at``/``on``, or
    ``in`` before a word beginning with a digit or sign."""
    word = _word(rest[0])
    if word in ("at", "on"):
        return True
    return word == "in" and len(rest) > 1 and tokens.DELAY_LIKE_RE.match(rest[1].text) is not None


def explain(text: str, args: Sequence[Token]) -> Command:
    """``explain <resource> [<role>]``."""
    sub = "explain"
    if not args:
        raise tokens.fail("missing resource", sub)
    if len(args) > 2:
        raise tokens.fail(
            f'explain takes a resource and a role, not "{tokens.show(args[2].text)}"', sub
        )
    resource = tokens.name(args[0], "resource", sub, "orders-db")
    role = tokens.name(args[1], "role", sub, "read") if len(args) > 1 else None
    return ExplainAccess(resource, role)
