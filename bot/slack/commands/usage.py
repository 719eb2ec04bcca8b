"""The ``/access`` usage lines (plain text, quoted in the grammar's errors) and the help text
``/access help`` shows (Slack mrkdwn)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

SUBCOMMAND_USAGE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "request": (
            "/access request <resource> [<role>] <duration>"
            " [at HH:MM | in <duration> | on YYYY-MM-DD HH:MM] <reason...>"
        ),
        "list": "/access list",
        "pending": "/access pending",
        "revoke": "/access revoke <grant-id> [reason...]",
        "extend": "/access extend <grant-id> <duration> <reason...>",
        "resources": "/access resources",
        "help": "/access help",
        "ssh-key": "/access ssh-key add <openssh public key> | /access ssh-key show",
        "ssh-key add": "/access ssh-key add <openssh public key>",
        "ssh-key show": "/access ssh-key show",
        "request for": "/access request for @person <resource> [<role>] <duration> <reason...>",
        "request bundle": "/access request bundle <name> <duration> <reason...>",
        "explain": "/access explain <resource> [<role>]",
    }
)
"""Plain-text usage line per subcommand (and per ``ssh-key`` action), as quoted in errors."""

_HELP_LINES: Final = (
    ("/access", "open the request form"),
    (
        SUBCOMMAND_USAGE["request"],
        "ask for access, e.g. `/access request orders-db read 30m INC-42 checkout is down`",
    ),
    (
        "/access request orders-db read 1h at 14:00 <reason...>",
        "start later: `at 14:00`, `in 2h` or `on 2026-12-01 09:00`, in your Slack time zone;"
        " approved before, it waits and is issued then (right after the duration, `at` and"
        " `on` always begin a start, and so does `in` before a number)",
    ),
    (
        SUBCOMMAND_USAGE["request for"],
        "ask on someone's behalf (policy `may_request_for`); the credential goes to them",
    ),
    (
        SUBCOMMAND_USAGE["request bundle"],
        "ask for every item of a bundle at once, e.g. `/access request bundle incident-responder"
        " 1h INC-42 outage`",
    ),
    (
        SUBCOMMAND_USAGE["explain"],
        "may you ask, who approves, and would it be auto-approved right now (and if not, why)",
    ),
    (SUBCOMMAND_USAGE["list"], "your pending and active grants"),
    (SUBCOMMAND_USAGE["pending"], "requests waiting for your approval"),
    (SUBCOMMAND_USAGE["revoke"], "end a grant now"),
    (SUBCOMMAND_USAGE["extend"], "ask for more time on a grant"),
    (SUBCOMMAND_USAGE["resources"], "what you may request, with limits"),
    (SUBCOMMAND_USAGE["help"], "this message"),
    (
        SUBCOMMAND_USAGE["ssh-key add"],
        "register your SSH public key (the line in ~/.ssh/id_ed25519.pub)",
    ),
    (SUBCOMMAND_USAGE["ssh-key show"], "show the SSH public key you registered"),
)


def _mrkdwn_escape(text: str) -> str:
    # Slack reads "<...>" as a mention/link and "&" as an entity, even inside `code`.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


USAGE: Final = "\n".join(
    [
        "*`/access`: just-in-time access*",
        *(f"• `{_mrkdwn_escape(line)}`: {what}" for line, what in _HELP_LINES),
        "Before a grant ends you get a reminder with *Extend* and *I'm done* buttons."
        " Durations look like 90s, 15m, 2h, 1h30m or 1d. Ticket references such as INC-42 in a"
        " reason are picked up. Never paste a private key anywhere: `ssh-key add` takes only"
        " the public key.",
    ]
)
"""The full help text (Slack mrkdwn, already escaped) that ``/access help`` shows."""
