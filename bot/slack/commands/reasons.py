"""A request's reason: the plain text grantbot stores and shows, and the tickets in it.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from bot.slack.commands.escapes import render_escapes

#: The longest reason, after normalisation (:func:`normalize_reason`).
MAX_REASON_CHARS: Final = 500

#: A ticket reference: an uppercase project key of 2-10 characters (letter first; digits and
#: ``_`` allowed, as in Jira), ``-``, digits, not glued to a surrounding word. Case-sensitive so
#: ordinary words are not taken; look-alikes such as ``UTF-8`` or ``SHA-256`` do match, which
#: is harmless for an index but means a policy must not treat "has a ticket" as proof.
TICKET_RE: Final = re.compile(r"(?<![A-Za-z0-9_-])[A-Z][A-Z0-9_]{1,9}-[0-9]+(?![A-Za-z0-9_-])")


def normalize_reason(text: str, *, slack_escaped: bool = True) -> str:
    """Return ``text`` as the plain-text reason grantbot stores and shows.

    With ``slack_escaped`` (slash-command text) Slack's escapes are rendered first:
    ``<@U1|name>`` -> ``@name``, ``<@U1>`` -> ``@U1``, ``<#C1|chan>`` -> ``#chan``,
    ``<!here>`` -> ``@here`` (also channel, everyone), ``<!subteam^S1|@team>`` -> ``@team``,
    other ``<!x|label>`` -> ``label``, ``<https://x|label>`` -> ``label (https://x)``,
    ``<https://x>`` -> ``https://x``, ``<http://x.com|x.com>`` -> ``x.com``,
    ``<mailto:a@b|a@b>`` -> ``a@b``; then ``&lt;`` ``&gt;`` ``&amp;`` become ``<`` ``>`` ``&``.
    Pass ``slack_escaped=False`` for text that was never escaped (a modal's input value).

    Then invisible format characters (Unicode Cf: zero-width spaces and joiners, bidi controls,
    BOM, tag characters) and non-whitespace controls are removed so the reason reads as it
    displays, the text is NFC-normalised, and runs of whitespace become one space.

    The result is plain text and may contain ``<``: put back into mrkdwn it must be escaped,
    or a typed ``<!here>`` would ping.
    """
    if slack_escaped:
        text = render_escapes(text)
    text = "".join(
        ch
        for ch in text
        if not (
            unicodedata.category(ch) in ("Cf", "Cs")
            or (unicodedata.category(ch) == "Cc" and not ch.isspace())
        )
    )
    return " ".join(unicodedata.normalize("NFC", text).split())


def extract_tickets(reason: str) -> tuple[str, ...]:
    """Ticket references (:data:`TICKET_RE`) in ``reason``, de-duplicated, first seen first."""
    return tuple(dict.fromkeys(TICKET_RE.findall(reason)))
