"""Where a machine client's credential goes: sealed to its request's public key and kept for
the API to hand out, instead of a Slack DM.

:class:`PipelineDelivery` wraps the notifier ``grantbot serve`` gives the service: for a
client's grant, ``credential_issued`` seals the credential (bot.api.sealing), stores only the
sealed bytes (bot.store.pipelines) and lets the approvers' copies show the grant as it is now
(the inner notifier's ``approval_recorded``: a refresh, no DM); everything else passes through.
A notifier never raises into the service: a failure is logged, and the pipeline's wait ends
on the grant's state with no credential ready (``GET .../credential`` says so).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.api.sealing import seal
from bot.domain.credentials import Credential
from bot.domain.model import Grant
from bot.logs import register_secret
from bot.notify import Forwarding, Notifier
from bot.store.pipelines import SealedCredentials

log = logging.getLogger(__name__)


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

    async def credential_issued(self, grant: Grant, credential: Credential) -> None:
        if grant.client is None:
            await self.inner.credential_issued(grant, credential)
            return
        for secret in credential.secret_values():
            register_secret(secret)  # masked should it ever reach a log line
        if grant.public_key is None:
            log.error("%s: a client's grant without a public key; nothing sealed", grant.id)
        else:
            box = seal(credential, public_key=grant.public_key)
            expires_at = grant.expires_at or credential.expires_at
            await self.sealed.put(grant.id, box, expires_at=expires_at, now=self.clock())
            log.info("%s: credential sealed for client %s", grant.id, grant.client)
        await self.inner.approval_recorded(grant)
