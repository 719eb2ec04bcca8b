"""``/access`` text -> command objects (:mod:`bot.slack.commands.parsed`), with usage errors a
person can act on.

Grammar (the text Slack sends after ``/access``)::

    (nothing)                                         OpenForm
    request <resource> [<role>] <duration> [<start>] <reason...>  RequestAccess
                      <start>: at HH:MM | in <duration> | on YYYY-MM-DD HH:MM
                      ("at"/"on" there always begin a start; "in" does when the next
                      word begins with a digit or sign: see _start_clause)
    list                                              ListGrants
    pending                                           PendingApprovals
    revoke <grant-id> [reason...]                     RevokeGrant
    extend <grant-id> <duration> <reason...>          ExtendGrant
    resources                                         ListResources
    help [anything]                                   Help (extra words are ignored)
    ssh-key add <openssh public key>                  SshKeyAdd
    ssh-key show                                      SshKeyShow

Contract of :func:`parse_command`: it returns one of the ``Command`` dataclasses or raises
:class:`~bot.errors.UsageError` -- never anything else. Every message is one line of plain text
of at most :data:`MAX_ERROR_CHARS` characters; it says what was wrong, ends with the usage line
of the subcommand concerned (from :mod:`bot.slack.commands.usage`), and quotes at most
:data:`ECHO_CHARS` characters of any one piece of the input, with invisible characters shown as
``\\uXXXX``. A message never quotes the key text of ``ssh-key add``. Messages are plain text:
whoever posts one as mrkdwn must escape ``&``, ``<`` and ``>`` (the usage lines contain ``<``).

Tokens. Any run of Unicode whitespace (spaces, tabs, newlines, no-break spaces...) separates
tokens; leading and trailing whitespace is ignored. A Slack escape such as
``<https://x|a label>`` is one token even when its label has spaces. The subcommand (and the
``ssh-key`` action) is case-insensitive.

Names. A resource or role is ASCII, lowercased, and matches :data:`NAME_RE`. A grant id is
lowercased and must have the shape in :mod:`bot.domain.ids`. A duration is ASCII and goes to
:func:`~bot.domain.duration.parse_duration`. The role is optional: when the word after the
resource reads as a duration it *is* the duration, so a role (or resource) named like a
duration (``1d``) cannot be written here.

Slack escapes. Slack sends mentions, channels and links as ``<@U123|name>``, ``<#C123|chan>``,
``<!here>``, ``<https://x|label>``, and a typed ``&``, ``<``, ``>`` as ``&amp;``, ``&lt;``,
``&gt;`` (:mod:`bot.slack.commands.escapes`). Where a name, id or duration is expected any
escape is refused, naming its kind. In a reason they are rendered readable (see
:func:`~bot.slack.commands.reasons.normalize_reason`).

Limits: the whole text at most :data:`MAX_COMMAND_CHARS` characters, a reason at most
``MAX_REASON_CHARS`` (:mod:`bot.slack.commands.reasons`) after normalisation; no control
characters (tab, CR and LF are whitespace) and no unpaired surrogates anywhere. Text that looks
like a private key is refused wherever it appears, without being quoted; a public key is
checked by :mod:`bot.domain.ssh_keys`.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Final, TypeAlias

from bot.domain.ids import is_grant_id
from bot.domain.ssh_keys import contains_private_key, key_problem
from bot.domain.start import StartSpec, parse_clock, parse_day
from bot.errors import UsageError
from bot.slack.commands.escapes import TOKEN_RE, escape_kind
from bot.slack.commands.parsed import (
    Command,
    ExtendGrant,
    Help,
    ListGrants,
    ListResources,
    OpenForm,
    PendingApprovals,
    RequestAccess,
    RevokeGrant,
    SshKeyAdd,
    SshKeyShow,
)
from bot.slack.commands.reasons import extract_tickets, normalize_reason
from bot.slack.commands.tokens import DELAY_LIKE_RE, ECHO_CHARS, NAME_RE
from bot.slack.commands.tokens import Token as _Token
from bot.slack.commands.tokens import duration as _duration
from bot.slack.commands.tokens import fail as _fail
from bot.slack.commands.tokens import name as _name
from bot.slack.commands.tokens import reason as _reason
from bot.slack.commands.tokens import show as _show
from bot.slack.commands.usage import SUBCOMMAND_USAGE
from bot.slack.commands.variants import explain, request_variant

__all__ = [
    "ECHO_CHARS",
    "MAX_COMMAND_CHARS",
    "MAX_ERROR_CHARS",
    "NAME_RE",
    "parse_command",
    "parse_public_key",
]

# ---------------------------------------------------------------------------------------------
# Limits and shapes

MAX_COMMAND_CHARS: Final = 2000
#: No error message from this module is longer (kept sane for an ephemeral Slack reply).
MAX_ERROR_CHARS: Final = 300

# ---------------------------------------------------------------------------------------------
# Lexing

# C0/C1 controls other than the whitespace ones, DEL, and lone surrogates (from bad JSON).
_FORBIDDEN_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff]")
# Reads as an attempt at a duration ("30x", "0m", "٣٠m"), so not as a role. Unicode \d on purpose.
_DURATION_LIKE_RE: Final = re.compile(r"\d\w*")


def _tokenize(text: str) -> list[_Token]:
    return [_Token(m.group(), m.start(), m.end()) for m in TOKEN_RE.finditer(text)]


# ---------------------------------------------------------------------------------------------
# Ids and durations (names, durations and reasons are read in tokens.py)


def _grant_id(token: _Token, subcommand: str) -> str:
    kind = escape_kind(token.text)
    if kind is not None:
        raise _fail(f"grant id must look like g-7k3p9xqm, not {kind}", subcommand)
    lowered = token.text.lower() if token.text.isascii() else ""
    if not is_grant_id(lowered):
        raise _fail(
            f'"{_show(token.text)}" is not a grant id; ids look like g-7k3p9xqm', subcommand
        )
    return lowered


def _try_duration(token: _Token) -> int | None:
    try:
        return _duration(token, "request")
    except UsageError:
        return None


# ---------------------------------------------------------------------------------------------
# Subcommands

_Handler: TypeAlias = Callable[[str, Sequence[_Token]], Command]


def _request(text: str, args: Sequence[_Token]) -> Command:
    sub = "request"
    # `request for @x ...` and `request bundle ...` (issue 13) live in variants.py.
    variant = request_variant(text, args, plain=_request)
    if variant is not None:
        return variant
    if not args:
        raise _fail("missing resource", sub)
    if _try_duration(args[0]) is not None:
        raise _fail(f'missing resource before the duration "{_show(args[0].text)}"', sub)
    resource = _name(args[0], "resource", sub, "orders-db")
    if len(args) < 2:
        raise _fail("missing duration", sub)
    role: str | None = None
    duration_s = _try_duration(args[1])
    rest = args[2:]
    if duration_s is None:
        third = _try_duration(args[2]) if len(args) > 2 else None
        if third is None and _DURATION_LIKE_RE.fullmatch(args[1].text):
            # A failed duration ("30x", "0m", "400d"), not a role: say what is wrong with it.
            _duration(args[1], sub)
        role = _name(args[1], "role", sub, "read")
        if len(args) < 3:
            raise _fail("missing duration", sub)
        duration_s = third if third is not None else _duration(args[2], sub)
        rest = args[3:]
    start, rest = _start_clause(rest)
    reason = _reason(text, rest, sub, required=True)
    return RequestAccess(resource, role, duration_s, reason, extract_tickets(reason), start=start)


_CLOCK_LIKE_RE: Final = re.compile(r"\d{1,2}:\d{2}")
_DAY_LIKE_RE: Final = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_START_HELP: Final = "write the start as at 14:00, in 2h or on 2026-12-01 09:00"


def _start_clause(rest: Sequence[_Token]) -> tuple[StartSpec | None, Sequence[_Token]]:
    """A scheduled start right after the duration, and the tokens after it.

    ``at`` or ``on`` as the word right after the duration always begins a start: what follows
    must be ``HH:MM`` (24-hour) or ``YYYY-MM-DD HH:MM``, else the request is refused naming
    the accepted forms (a reason cannot begin with "at" or "on" there: a mistyped start must
    never be filed as a request starting now). ``in`` begins a start when the next word reads
    like a delay (it begins with a digit or a sign: ``in 2h``, ``in -2h``, ``in 2x``), which
    must then be a valid duration; otherwise (``in prod``, ``in INC-42``) it begins the reason."""
    sub = "request"
    if not rest or not rest[0].text.isascii():
        return None, rest
    word = rest[0].text.lower()
    value = rest[1].text if len(rest) > 1 else ""
    if word == "in":
        if not DELAY_LIKE_RE.match(value):
            return None, rest
        try:
            delay_s = _duration(rest[1], sub)
        except UsageError:
            raise _fail(
                f'"{_show(value)}" after "in" is not a duration like 2h or 1h30m; {_START_HELP}',
                sub,
            ) from None
        return StartSpec("in", delay_s=delay_s), rest[2:]
    if word == "at":
        clock = parse_clock(value)
        if clock is None and _CLOCK_LIKE_RE.fullmatch(value):
            raise _fail(
                f'"{_show(value)}" is not a time of day (HH:MM, 24-hour); {_START_HELP}', sub
            )
        if clock is None:
            raise _fail(_not_a_start("at", value), sub)
        return StartSpec("at", clock=clock), rest[2:]
    if word == "on":
        day = parse_day(value)
        if day is None and _DAY_LIKE_RE.fullmatch(value):
            raise _fail(f'"{_show(value)}" is not a date (YYYY-MM-DD); {_START_HELP}', sub)
        if day is None:
            raise _fail(_not_a_start("on", value), sub)
        after = rest[2].text if len(rest) > 2 else ""
        clock = parse_clock(after)
        if clock is None and _CLOCK_LIKE_RE.fullmatch(after):
            raise _fail(
                f'"{_show(after)}" is not a time of day (HH:MM, 24-hour); {_START_HELP}', sub
            )
        if clock is None:
            raise _fail(f"on {day} needs a time of day after it, e.g. 09:00; {_START_HELP}", sub)
        return StartSpec("on", clock=clock, day=day), rest[3:]
    return None, rest


def _not_a_start(word: str, value: str) -> str:
    if not value:
        return f'"{word}" after the duration begins a start; {_START_HELP} (24-hour)'
    return (
        f'"{word} {_show(value)}" is not a start; {_START_HELP} (24-hour),'
        " or begin the reason with another word"
    )


def _revoke(text: str, args: Sequence[_Token]) -> Command:
    if not args:
        raise _fail("missing grant id", "revoke")
    grant_id = _grant_id(args[0], "revoke")
    return RevokeGrant(grant_id, _reason(text, args[1:], "revoke", required=False))


def _extend(text: str, args: Sequence[_Token]) -> Command:
    sub = "extend"
    if not args:
        raise _fail("missing grant id", sub)
    grant_id = _grant_id(args[0], sub)
    if len(args) < 2:
        raise _fail("missing duration", sub)
    duration_s = _duration(args[1], sub)
    reason = _reason(text, args[2:], sub, required=True)
    return ExtendGrant(grant_id, duration_s, reason, extract_tickets(reason))


def _no_arguments(subcommand: str, command: Command) -> _Handler:
    def handler(text: str, args: Sequence[_Token]) -> Command:
        if args:
            raise _fail(
                f'{subcommand} takes no arguments, but got "{_show(args[0].text)}"', subcommand
            )
        return command

    return handler


def _help(text: str, args: Sequence[_Token]) -> Command:
    # "/access help request" is a natural thing to type; the full help answers it.
    return Help()


def _ssh_key(text: str, args: Sequence[_Token]) -> Command:
    if not args:
        raise _fail('missing action: "add" or "show"', "ssh-key")
    word = args[0].text
    action = word.lower() if word.isascii() else word
    if action == "add":
        return SshKeyAdd(_public_key(text, args[1:]))
    if action == "show":
        return _no_arguments("ssh-key show", SshKeyShow())(text, args[1:])
    close = difflib.get_close_matches(action[:ECHO_CHARS], ("add", "show"), n=1, cutoff=0.5)
    hint = f'; did you mean "{close[0]}"?' if close else '; it is "add" or "show"'
    raise _fail(f'unknown ssh-key action "{_show(word)}"{hint}', "ssh-key")


_NEVER_PRIVATE: Final = (
    "paste only the one-line public key (your .pub file) and never a private key"
)


def _key_error(problem: str) -> UsageError:
    # Deliberately quotes nothing of what was pasted: it may be a secret.
    return _fail(f"{problem}; {_NEVER_PRIVATE}", "ssh-key add")


def _public_key(text: str, args: Sequence[_Token]) -> str:
    if not args:
        raise _key_error("missing key")
    if len(text[args[0].start : args[-1].end].splitlines()) > 1:
        raise _key_error("the key must be on one line")
    problem = key_problem(args[0].text, args[1].text if len(args) > 1 else None)
    if problem is not None:
        raise _key_error(problem)
    key = f"{args[0].text} {args[1].text}"  # a type and a body: key_problem found both
    # The comment is free text; Slack may have turned "me@host.com" into a mailto link.
    comment = normalize_reason(text[args[2].start : args[-1].end]) if len(args) > 2 else ""
    return f"{key} {comment}" if comment else key


def parse_public_key(text: str) -> str:
    """An OpenSSH public key pasted on its own (the request form's field), checked exactly as
    ``/access ssh-key add`` checks it; UsageError, quoting none of the text, otherwise. The
    caller rejects private keys first
    (:func:`~bot.domain.ssh_keys.contains_private_key`)."""
    return _public_key(text, _tokenize(text))


_HANDLERS: Final[Mapping[str, _Handler]] = MappingProxyType(
    {
        "request": _request,
        "list": _no_arguments("list", ListGrants()),
        "pending": _no_arguments("pending", PendingApprovals()),
        "revoke": _revoke,
        "extend": _extend,
        "resources": _no_arguments("resources", ListResources()),
        "help": _help,
        "ssh-key": _ssh_key,
        "explain": explain,
    }
)
#: Every subcommand, in the order messages list them.
_SUBCOMMANDS: Final = tuple(_HANDLERS)

_PRIVATE_KEY_MESSAGE: Final = (
    "that looks like a PRIVATE key, so nothing was done and none of it is repeated here."
    " Never paste a private key; treat this one as exposed and make a new pair"
    " (ssh-keygen -t ed25519). Usage: " + SUBCOMMAND_USAGE["ssh-key add"]
)


def parse_command(text: str) -> Command:
    """Parse the text after ``/access`` into a :data:`Command`.

    Raises :class:`~bot.errors.UsageError` (and nothing else) for any input that is not a
    valid command; the module docstring lists what the message promises.
    """
    # Before anything that might quote the input: a private key must never be echoed.
    if contains_private_key(text):
        raise UsageError(_PRIVATE_KEY_MESSAGE)
    if len(text) > MAX_COMMAND_CHARS:
        raise UsageError(
            f"that command is {len(text)} characters; the limit is {MAX_COMMAND_CHARS}"
        )
    bad = _FORBIDDEN_RE.search(text)
    if bad is not None:
        char = bad.group()
        what = "an unpaired surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
        raise UsageError(
            f"the command contains {what} (U+{ord(char):04X}) at position {bad.start() + 1};"
            " remove it and try again"
        )
    tokens = _tokenize(text)
    if not tokens:
        return OpenForm()
    word = tokens[0].text
    # ASCII first: "ssh-\u212aey".lower() == "ssh-key" (Kelvin sign).
    subcommand = word.lower() if word.isascii() else word
    handler = _HANDLERS.get(subcommand)
    if handler is None:
        raise _unknown_subcommand(word)
    return handler(text, tokens[1:])


def _unknown_subcommand(word: str) -> UsageError:
    key = word.lower()[:ECHO_CHARS]
    close = difflib.get_close_matches(key, _SUBCOMMANDS, n=1, cutoff=0.6)
    if close:
        return UsageError(
            f'unknown subcommand "{_show(word)}"; did you mean "{close[0]}"?'
            f" Usage: {SUBCOMMAND_USAGE[close[0]]}"
        )
    return UsageError(
        f'unknown subcommand "{_show(word)}"; use one of {", ".join(_SUBCOMMANDS)}'
        " (/access help explains them)"
    )
