"""The commands ``/access`` text parses to (:func:`bot.slack.commands.grammar.parse_command`),
carried out by :mod:`bot.slack.commands.dispatch`. Plain frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from bot.domain.start import StartSpec


@dataclass(frozen=True, slots=True)
class OpenForm:
    """``/access`` with no text: open the request form."""


@dataclass(frozen=True, slots=True)
class RequestAccess:
    """Ask for ``role`` (None: the resource's default) on ``resource`` for ``duration_s``.

    ``reason`` is normalised plain text (see
    :func:`~bot.slack.commands.reasons.normalize_reason`), never empty;
    ``tickets`` are the ticket references found in it, first occurrence first.
    """

    resource: str
    role: str | None
    duration_s: int
    reason: str
    tickets: tuple[str, ...]
    #: ``at 14:00`` / ``in 2h`` / ``on 2026-12-01 09:00`` after the duration (None: now).
    start: StartSpec | None = None


@dataclass(frozen=True, slots=True)
class ListGrants:
    """My pending and active grants."""


@dataclass(frozen=True, slots=True)
class PendingApprovals:
    """Requests waiting for my approval."""


@dataclass(frozen=True, slots=True)
class RevokeGrant:
    """End ``grant_id`` now; ``reason`` is normalised plain text and may be empty."""

    grant_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ExtendGrant:
    """Ask for ``duration_s`` more on ``grant_id``; reason and tickets as in RequestAccess."""

    grant_id: str
    duration_s: int
    reason: str
    tickets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListResources:
    """What I may request, with limits."""


@dataclass(frozen=True, slots=True)
class Help:
    """Show :data:`~bot.slack.commands.usage.USAGE`."""


@dataclass(frozen=True, slots=True)
class SshKeyAdd:
    """Register ``public_key``: ``"<type> <base64>[ <comment>]"``, checked, single spaces."""

    public_key: str


@dataclass(frozen=True, slots=True)
class SshKeyShow:
    """Show the SSH public key I registered."""


# -- issue 13: explain, on behalf, bundles ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExplainAccess:
    """``/access explain <resource> [<role>]``: what the policy would do with my request."""

    resource: str
    role: str | None


@dataclass(frozen=True, slots=True)
class RequestFor:
    """``/access request for <@U…> …``: ``request`` asked for ``beneficiary`` (a user id)."""

    beneficiary: str
    request: RequestAccess


@dataclass(frozen=True, slots=True)
class RequestBundle:
    """``/access request bundle <name> <duration> <reason...>``: every item of a bundle."""

    bundle: str
    duration_s: int
    reason: str
    tickets: tuple[str, ...]


Command: TypeAlias = (
    OpenForm
    | RequestAccess
    | ListGrants
    | PendingApprovals
    | RevokeGrant
    | ExtendGrant
    | ListResources
    | Help
    | SshKeyAdd
    | SshKeyShow
    | ExplainAccess
    | RequestFor
    | RequestBundle
)
