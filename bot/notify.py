"""What the service tells the outside world after a state change, as a Protocol.

The Slack notifier implements it; the CLI and tests without Slack use :class:`NullNotifier`;
``grantbot serve`` wraps the Slack notifier in :class:`WithoutEnds` (ends come from the audit
stream, see bot.announcer).
A notifier must never raise into the service: a failed notification cannot undo a stored
decision. The service calls it after the state change is committed and logs failures.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from bot.domain.model import Grant

if TYPE_CHECKING:
    from bot.domain.credentials import Credential


class Notifier(Protocol):
    """Every method does nothing by default, so that :class:`NullNotifier` is the protocol
    itself; a class that implements it structurally (the Slack notifier) defines them all."""

    async def request_created(self, grant: Grant) -> None:
        """A new PENDING request: ask its approvers."""
        return None

    async def approval_recorded(self, grant: Grant) -> None:
        """One of N approvals recorded; still PENDING (update "k of N")."""
        return None

    async def decided(self, grant: Grant) -> None:
        """APPROVED or DENIED: update approval messages, tell the requester. An auto-approved
        grant is told once it is issued (ACTIVE, or FAILED), so that the credential comes
        first; an auto-approved extension while APPROVED."""
        return None

    async def credential_issued(self, grant: Grant, credential: Credential) -> None:
        """ACTIVE: deliver the credential to the requester by DM only."""
        return None

    async def issue_failed(self, grant: Grant) -> None:
        """FAILED: issuing the credential failed."""
        return None

    async def ended(self, grant: Grant) -> None:
        """EXPIRED, REVOKED, CANCELLED or TIMED_OUT."""
        return None

    async def revoke_failed(self, grant: Grant) -> None:
        """REVOKE_FAILED: revocation is being retried; approvers must hear of it."""
        return None

    async def extended(self, grant: Grant) -> None:
        """ACTIVE grant's expiry moved later."""
        return None

    async def escalated(
        self, grant: Grant, *, tier: int, users: Iterable[str], channel: str | None
    ) -> None:
        """PENDING ``grant`` reached escalation tier ``tier`` (1-based): ask ``users`` and
        ``channel`` too, keeping their copies current like the first ones."""
        return None

    async def bundle_filed(self, bundle_id: str) -> None:
        """Every item of bundle ``bundle_id`` is filed (issue 13): ask for them at once."""
        return None


class NullNotifier(Notifier):
    """Tells no one (the protocol's do-nothing defaults). For the CLI and for tests of the
    flow without Slack."""


class Forwarding:
    """Passes every notification to ``inner``. The one home of the forwarding, so that a
    wrapper (:class:`WithoutEnds`, bot.api.delivery's ``PipelineDelivery``) overrides only
    what it changes and a new Notifier method is forwarded by adding it here once."""

    def __init__(self, inner: Notifier) -> None:
        self.inner = inner

    async def request_created(self, grant: Grant) -> None:
        await self.inner.request_created(grant)

    async def approval_recorded(self, grant: Grant) -> None:
        await self.inner.approval_recorded(grant)

    async def decided(self, grant: Grant) -> None:
        await self.inner.decided(grant)

    async def credential_issued(self, grant: Grant, credential: Credential) -> None:
        await self.inner.credential_issued(grant, credential)

    async def issue_failed(self, grant: Grant) -> None:
        await self.inner.issue_failed(grant)

    async def ended(self, grant: Grant) -> None:
        await self.inner.ended(grant)

    async def revoke_failed(self, grant: Grant) -> None:
        await self.inner.revoke_failed(grant)

    async def extended(self, grant: Grant) -> None:
        await self.inner.extended(grant)

    async def escalated(
        self, grant: Grant, *, tier: int, users: Iterable[str], channel: str | None
    ) -> None:
        await self.inner.escalated(grant, tier=tier, users=users, channel=channel)

    async def bundle_filed(self, bundle_id: str) -> None:
        await self.inner.bundle_filed(bundle_id)


class WithoutEnds(Forwarding):
    """``inner`` for everything but ends (``ended``, ``issue_failed``, ``revoke_failed``),
    which it drops. ``grantbot serve`` gives the service this: ends reach Slack once, from
    the audit stream (bot.announcer), whichever process or replica made them."""

    # The ends are the protocol's do-nothing defaults.
    issue_failed = Notifier.issue_failed
    ended = Notifier.ended
    revoke_failed = Notifier.revoke_failed
