"""Where a machine client's credential goes: sealed to its request's public key and kept for
the API to hand out, instead of a Slack DM.

:class:`PipelineDelivery` wraps the notifier ``grantbot serve`` gives the service: for a
client's grant, ``credential_issued`` seals the credential (bot.api.sealing), stores only the
sealed bytes (bot.store.pipelines) and lets the approvers' copies show the grant as it is now
(the inner notifier's ``approval_recorded``: a refresh, no DM); everything else passes through.
A notifier never raises into the service. Should sealing or storing the sealed credential
fail after issue, the access must not stay live with nobody able to use it: the grant is taken
back through ``take_back`` (set by bot.api.install: the service's revoke, audited with
:data:`SEAL_FAILED`), so the pipeline's wait ends on a REVOKED grant saying why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from bot.api.sealing import seal
from bot.domain.credentials import Credential
from bot.domain.model import Grant
from bot.errors import UsageError
from bot.logs import register_secret
from bot.notify import Forwarding, Notifier
from bot.store.pipelines import SealedCredentials

log = logging.getLogger(__name__)

#: The reason a grant whose credential could not be sealed is revoked with.
SEAL_FAILED: Final = (
    "the credential could not be sealed to the request's public_key, so the access was"
    " taken back; ask again with a new key pair"
)
#: Takes back a grant whose credential could not be delivered: the grant and why.
TakeBack = Callable[[Grant, str], Awaitable[object]]


class PipelineDelivery(Forwarding):
    """``inner`` for people's grants; sealing for machine clients' (see module doc)."""

    def __init__(
        self,
        inner: Notifier,
        *,
        sealed: SealedCredentials,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(inner)
        self.sealed = sealed
        self.clock = clock
        self.take_back: TakeBack | None = None

    async def credential_issued(self, grant: Grant, credential: Credential) -> None:
        if grant.client is None:
            await self.inner.credential_issued(grant, credential)
            return
        for secret in credential.secret_values():
            register_secret(secret)  # masked should it ever reach a log line
        try:
            if grant.public_key is None:
                raise UsageError("a client's grant without a public key")
            box = seal(credential, public_key=grant.public_key)
            expires_at = grant.expires_at or credential.expires_at
            await self.sealed.put(grant.id, box, expires_at=expires_at, now=self.clock())
            log.info("%s: credential sealed for client %s", grant.id, grant.client)
        except Exception as e:
            log.error(
                "%s: sealing the credential for client %s failed (%s); taking the access back",
                grant.id,
                grant.client,
                type(e).__name__,
            )
            if self.take_back is not None:
                await self.take_back(grant, SEAL_FAILED)
        await self.inner.approval_recorded(grant)
