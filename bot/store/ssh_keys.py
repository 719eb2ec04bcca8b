"""The SSH public keys people register (``/access ssh-key add``) for SSH certificate roles.

A key is public, not a secret; it is kept per user (:meth:`bot.store.keys.Keys.ssh_key`).
Registering one and its ``SSH_KEY_SET`` audit entry are one atomic step
(``lua/ssh_key_set.lua``). Redis being unreachable is :class:`~bot.errors.StoreUnavailable`
("try again shortly"), as for every store call.
"""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

from bot.store.audit import entry_body
from bot.store.chain import AuditChain, ScriptCall
from bot.store.connection import translate_errors
from bot.store.keys import Keys
from bot.store.scripts import register

SSH_KEY_SET_EVENT: Final = "SSH_KEY_SET"


class SshKeys:
    """Read and register users' SSH public keys."""

    def __init__(self, client: aioredis.Redis, *, keys: Keys, chain: AuditChain) -> None:
        self._r = client
        self._keys = keys
        self._chain = chain
        self._set = register(client, "ssh_key_set.lua")

    @translate_errors
    async def get(self, user: str) -> str | None:
        """The key ``user`` registered, or None."""
        value = await self._r.get(self._keys.ssh_key(user))
        return None if value is None else str(value)

    @translate_errors
    async def set(self, user: str, public_key: str, *, at: float) -> str:
        """Register ``public_key`` (checked by the caller) as ``user``'s, replacing any
        before, and audit it (the key type only); returns the audit entry's stream id."""
        body = entry_body(
            at=at,
            event=SSH_KEY_SET_EVENT,
            actor=user,
            details={"key_type": public_key.split(" ", 1)[0]},
        )
        keys = [self._keys.ssh_key(user), self._keys.audit, self._keys.audit_head]

        def attempt(head: str, hashes: list[str]) -> ScriptCall:
            return ScriptCall(self._set, keys, [public_key, head, body, hashes[0]])

        reply = await self._chain.extend([body], attempt)
        return str(reply[1])
