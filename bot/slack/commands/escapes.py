"""Slack's escapes in the text of a command, recognised, named and rendered readable.

Slack sends mentions, channels and links as ``<@U123|name>``, ``<#C123|chan>``, ``<!here>``,
``<https://x|label>``, and a typed ``&``, ``<``, ``>`` as ``&amp;``, ``&lt;``, ``&gt;``.
The grammar refuses an escape where a name, id or duration is expected (naming its kind:
:func:`escape_kind`) and renders the ones in a reason (:func:`render_escapes`).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from typing import Final

_ESC_TARGET: Final = r"[^<>|\s]+"
_ESC_LABEL: Final = r"[^<>]*"
_ESC_SCHEME: Final = r"[A-Za-z][A-Za-z0-9+.\-]*:"
#: One Slack escape: a mention/channel/special (`<@..>`, `<#..>`, `<!..>`) or a link.
_ESCAPE_RE: Final = re.compile(
    rf"<(?P<sigil>[@#!])(?P<target>{_ESC_TARGET})(?:\|(?P<label>{_ESC_LABEL}))?>"
    rf"|<(?P<url>{_ESC_SCHEME}{_ESC_TARGET})(?:\|(?P<ulabel>{_ESC_LABEL}))?>"
)
_ANY_ESCAPE: Final = rf"<(?:[@#!]|{_ESC_SCHEME}){_ESC_TARGET}(?:\|{_ESC_LABEL})?>"
#: A token: a run of non-space characters in which a whole escape counts as one character, so
#: a link label with spaces stays in its token.
# (Command text is at most 2000 characters, so the escape alternative's scan to the next '>'
# cannot get expensive.)
TOKEN_RE: Final = re.compile(rf"(?:{_ANY_ESCAPE}|\S)+")
_ENTITY_RE: Final = re.compile(r"&(amp|lt|gt);")
_ENTITIES: Final = {"amp": "&", "lt": "<", "gt": ">"}


def _render_escape(match: re.Match[str]) -> str:
    sigil, target, label = match["sigil"], match["target"], match["label"]
    if sigil == "@":
        return "@" + (label or target).removeprefix("@")
    if sigil == "#":
        return "#" + (label or target).removeprefix("#")
    if sigil == "!":
        name, _, rest = target.partition("^")
        if name in ("here", "channel", "everyone"):
            return "@" + name
        if name == "subteam":
            return "@" + (label or rest).removeprefix("@")
        return label or name  # e.g. <!date^...|Feb 18, 2014>: the fallback text
    url, ulabel = match["url"], match["ulabel"]
    bare = url.split(":", 1)[1].removeprefix("//")  # mailto:a@b -> a@b; https://x -> x
    if not ulabel or ulabel in (url, bare):
        # Slack links what people type ("example.com" -> <http://example.com|example.com>):
        # give back what they typed.
        return ulabel or (bare if url.lower().startswith("mailto:") else url)
    return f"{ulabel} ({url})"


def render_escapes(text: str) -> str:
    """``text`` with every Slack escape rendered as a person reads it (see
    :func:`~bot.slack.commands.reasons.normalize_reason` for each form), then ``&lt;``,
    ``&gt;`` and ``&amp;`` turned back into ``<``, ``>`` and ``&``."""
    text = _ESCAPE_RE.sub(_render_escape, text)
    # One pass, so "&amp;lt;" becomes "&lt;" and not "<".
    return _ENTITY_RE.sub(lambda m: _ENTITIES[m[1]], text)


def escape_kind(token: str) -> str | None:
    """What kind of Slack escape ``token`` contains, for a message; None when it has none."""
    match = _ESCAPE_RE.search(token)
    if match is None:
        return None
    sigil = match["sigil"]
    if sigil == "@":
        return "a user mention"
    if sigil == "#":
        return "a channel link"
    if sigil == "!":
        name = match["target"].partition("^")[0].lower()
        if name in ("here", "channel", "everyone"):
            return f"an @{name} mention"
        return "a user-group mention" if name == "subteam" else "a Slack special mention"
    return "an email link" if match["url"].lower().startswith("mailto:") else "a link"
