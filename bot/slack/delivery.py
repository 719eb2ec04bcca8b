"""What Slack failed to deliver while one person's action was handled, so they can be told.

The notifier never raises: a message Slack would not take is logged and audited, and the
grant's state stands. The person who acted still deserves to know, in the answer they get
(their ephemeral confirmation): a listener wraps its call to the service in
:func:`watching`, and every failure the notifier reports inside it is collected there
(a context variable, so concurrent actions never see each other's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from bot.domain.model import Grant, Status


@dataclass(frozen=True, slots=True)
class Undelivered:
    """One Slack call about ``grant_id`` that failed for good."""

    grant_id: str
    method: str
    channel: str | None
    code: str


_WATCHED: ContextVar[list[Undelivered] | None] = ContextVar("slack_undelivered", default=None)


@contextlib.contextmanager
def watching() -> Iterator[list[Undelivered]]:
    """Collect the failures :func:`record`-ed in this context (and tasks started in it)."""
    found: list[Undelivered] = []
    token = _WATCHED.set(found)
    try:
        yield found
    finally:
        _WATCHED.reset(token)


def record(failure: Undelivered) -> None:
    """Note ``failure`` for whoever is watching (nobody: nothing to do)."""
    found = _WATCHED.get()
    if found is not None:
        found.append(failure)


def credential_undelivered(failures: Sequence[Undelivered], grant: Grant) -> bool:
    """True when ``grant`` is live and its DM to the requester (the credential) failed."""
    return grant.status is Status.ACTIVE and any(
        f.grant_id == grant.id and f.method == "chat.postMessage" and f.channel == grant.requester
        for f in failures
    )


def note(failures: Sequence[Undelivered], grant: Grant, *, for_requester: bool) -> str | None:
    """One or two sentences on what Slack did not deliver about ``grant`` (None: all went
    out). ``for_requester`` words the credential sentence for the requester."""
    mine = [f for f in failures if f.grant_id == grant.id]
    if not mine:
        return None
    codes = ", ".join(sorted({f.code for f in mine}))
    parts: list[str] = []
    if credential_undelivered(mine, grant):
        whose = "your credential" if for_requester else "the credential"
        parts.append(
            f"Slack did not deliver {whose} by DM ({codes}): nobody holds it. "
            f"End it with `/access revoke {grant.id}` and ask again."
        )
    posts = [f for f in mine if f.method == "chat.postMessage" and f.channel != grant.requester]
    if posts and grant.status is Status.PENDING:
        parts.append(
            f"Slack did not deliver the request to {len(posts)} of the places it asks "
            f"({codes}); it is filed all the same, so tell the approvers or ask again later."
        )
    elif posts:
        parts.append(f"Slack did not deliver {len(posts)} message(s) about it ({codes}).")
    # A message may fail to update more than once (each change re-renders every copy).
    updated = {f.channel for f in mine if f.method == "chat.update"}
    if updated:
        parts.append(
            f"Slack could not update {len(updated)} message(s) about it ({codes}); they may "
            "show an earlier state."
        )
    return " ".join(parts) or None
