"""The grammar of issue 13's additions to ``/access``, kept apart from the core grammar
(:mod:`bot.slack.commands.grammar`, whose helpers they use and which calls them)::

    request for <@U…> <resource> [<role>] <duration> <reason...>   RequestFor
    request bundle <name> <duration> <reason...>                   RequestBundle
    explain <resource> [<role>]                                    ExplainAccess

``for`` and ``bundle`` are keywords after ``request`` (resources so named can be asked for
only in the form). Same contract as :func:`grammar.parse_command`:
a command or :class:`~bot.errors.UsageError` ending in the usage line. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from bot.slack.commands import grammar
from bot.slack.commands.parsed import (
    Command,
    ExplainAccess,
    RequestAccess,
    RequestBundle,
    RequestFor,
)
from bot.slack.commands.reasons import extract_tickets

#: A user mention as Slack escapes it in a command (``should_escape``): ``<@U123|name>``.
_USER_MENTION_RE: Final = re.compile(r"<@([UW][A-Z0-9]{2,20})(?:\|[^<>]*)?>")


def _word(token: grammar._Token) -> str:
    return token.text.lower() if token.text.isascii() else token.text


def request_variant(text: str, args: Sequence[grammar._Token]) -> Command | None:
    """``request for …`` or ``request bundle …``; None when ``args`` are a plain request."""
    if not args:
        return None
    word = _word(args[0])
    if word == "for" and len(args) > 1:
        return _request_for(text, args[1:])
    if word == "bundle":
        return _request_bundle(text, args[1:])
    return None


def _request_for(text: str, args: Sequence[grammar._Token]) -> Command:
    sub = "request for"
    match = _USER_MENTION_RE.fullmatch(args[0].text)
    if match is None:
        raise grammar._fail("name the person as a mention, like @dana", sub)
    inner = grammar._request(text, args[1:])
    if not isinstance(inner, RequestAccess):
        raise grammar._fail("a request on someone's behalf asks for one resource", sub)
    return RequestFor(beneficiary=match.group(1), request=inner)


def _request_bundle(text: str, args: Sequence[grammar._Token]) -> Command:
    sub = "request bundle"
    if not args:
        raise grammar._fail("missing bundle name", sub)
    name = grammar._name(args[0], "bundle", sub, "incident-responder")
    if len(args) < 2:
        raise grammar._fail("missing duration", sub)
    duration_s = grammar._duration(args[1], sub)
    reason = grammar._reason(text, args[2:], sub, required=True)
    return RequestBundle(name, duration_s, reason, extract_tickets(reason))


def explain(text: str, args: Sequence[grammar._Token]) -> Command:
    """``explain <resource> [<role>]``."""
    sub = "explain"
    if not args:
        raise grammar._fail("missing resource", sub)
    if len(args) > 2:
        raise grammar._fail(
            f'explain takes a resource and a role, not "{grammar._show(args[2].text)}"', sub
        )
    resource = grammar._name(args[0], "resource", sub, "orders-db")
    role = grammar._name(args[1], "role", sub, "read") if len(args) > 1 else None
    return ExplainAccess(resource, role)
