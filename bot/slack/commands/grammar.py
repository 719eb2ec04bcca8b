"""``/access`` text -> command objects (:mod:`bot.slack.commands.parsed`), with usage errors a
person can act on.

Grammar (the text Slack sends after ``/access``)::

    (nothing)                                         OpenForm
    request <resource> [<role>] <duration> <reason...> RequestAccess
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
from typing import Final, NamedTuple, TypeAlias

from bot.domain.duration import parse_duration
from bot.domain.ids import is_grant_id
from bot.domain.ssh_keys import contains_private_key, key_problem
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
from bot.slack.commands.reasons import MAX_REASON_CHARS, extract_tickets, normalize_reason
from bot.slack.commands.usage import SUBCOMMAND_USAGE

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
#: The most characters of any one piece of user input an error message quotes.
ECHO_CHARS: Final = 40
#: No error message from this module is longer (kept sane for an ephemeral Slack reply).
MAX_ERROR_CHARS: Final = 300

#: A resource or role name, after lowercasing. Matched with fullmatch: ``$`` alone would accept
#: a trailing newline.
NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

# ---------------------------------------------------------------------------------------------
# Lexing

# C0/C1 controls other than the whitespace ones, DEL, and lone surrogates (from bad JSON).
_FORBIDDEN_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff]")
# Reads as an attempt at a duration ("30x", "0m", "٣٠m"), so not as a role. Unicode \d on purpose.
_DURATION_LIKE_RE: Final = re.compile(r"\d\w*")


class _Token(NamedTuple):
    text: str
    start: int
    end: int


def _tokenize(text: str) -> list[_Token]:
    return [_Token(m.group(), m.start(), m.end()) for m in TOKEN_RE.finditer(text)]


def _show(text: str) -> str:
    """``text`` as an error may quote it: invisible characters spelled out, at most ECHO_CHARS."""
    # Spelling out bidi/zero-width characters stops a quoted token reordering the message.
    safe = "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in text[: ECHO_CHARS + 1]
    )
    return safe if len(safe) <= ECHO_CHARS else safe[: ECHO_CHARS - 3] + "..."


def _fail(problem: str, subcommand: str) -> UsageError:
    stop = "" if problem.endswith("?") else "."
    return UsageError(f"{problem}{stop} Usage: {SUBCOMMAND_USAGE[subcommand]}")


# ---------------------------------------------------------------------------------------------
# Reasons


def _reason(text: str, args: Sequence[_Token], subcommand: str, *, required: bool) -> str:
    raw = text[args[0].start : args[-1].end] if args else ""
    reason = normalize_reason(raw)
    if required and not reason:
        raise UsageError(f"a reason is required: {SUBCOMMAND_USAGE[subcommand]}")
    if len(reason) > MAX_REASON_CHARS:
        raise _fail(
            f"the reason is {len(reason)} characters; the limit is {MAX_REASON_CHARS}", subcommand
        )
    return reason


# ---------------------------------------------------------------------------------------------
# Names, ids, durations


def _name(token: _Token, what: str, subcommand: str, example: str) -> str:
    kind = escape_kind(token.text)
    if kind is not None:
        raise _fail(f"{what} must be a plain name like {example}, not {kind}", subcommand)
    # ASCII first: str.lower() maps e.g. the Kelvin sign to "k", which would slip through.
    lowered = token.text.lower() if token.text.isascii() else ""
    if NAME_RE.fullmatch(lowered) is None:
        raise _fail(
            f"{what} must be a plain name like {example} (a-z, 0-9, - and _; at most 64),"
            f' not "{_show(token.text)}"',
            subcommand,
        )
    return lowered


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


def _duration(token: _Token, subcommand: str) -> int:
    kind = escape_kind(token.text)
    if kind is not None:
        raise _fail(f"duration must be written like 30m or 1h30m, not {kind}", subcommand)
    # parse_duration's \d would take non-ASCII digits ("٣٠m"), and it quotes its input as is.
    if not (token.text.isascii() and token.text.isprintable()):
        raise _fail(
            f'"{_show(token.text)}" is not a duration; use a number with d, h, m or s,'
            " e.g. 15m, 2h, 1h30m, 1d",
            subcommand,
        )
    try:
        return parse_duration(token.text)
    except UsageError as e:
        raise _fail(str(e), subcommand) from e


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
    # `request for @x ...` and `request bundle ...` (issue 13) live in variants.py, which
    # builds on this module's helpers: imported here, not at the top, to avoid the cycle.
    from bot.slack.commands.variants import request_variant

    variant = request_variant(text, args)
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
    reason = _reason(text, rest, sub, required=True)
    return RequestAccess(resource, role, duration_s, reason, extract_tickets(reason))


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


def _explain(text: str, args: Sequence[_Token]) -> Command:
    from bot.slack.commands.variants import explain  # see _request

    return explain(text, args)


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
        "explain": _explain,
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
