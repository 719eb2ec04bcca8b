"""Who is calling: the policy's ``clients:`` and their bearer tokens.

Each client's token comes from the environment variable its ``token: ${VAR}`` names; only its
SHA-256 is kept (recomputed when the policy changes), and a presented token is hashed and
compared with every client's hash in constant time (``hmac.compare_digest``, all of them,
always), so neither the answer nor its timing tells which part of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bot.envrefs import resolve as resolve_env_refs
from bot.errors import ConfigError
from bot.policy_holder import PolicyHolder

log = logging.getLogger(__name__)

BEARER = "bearer "


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The client a call authenticates as, or why it does not (``problem``)."""

    client: str | None
    problem: str | None = None


class ClientTokens:
    """The clients of the current policy by token hash (``environ`` holds the tokens)."""

    def __init__(self, policy: PolicyHolder, *, environ: Mapping[str, str]) -> None:
        self.policy = policy
        self.environ = environ
        self._version: str | None = None
        self._digests: dict[str, bytes] = {}

    def _current(self) -> dict[str, bytes]:
        version = self.policy.version
        if version != self._version:
            digests: dict[str, bytes] = {}
            for name, client in self.policy.current.policy.clients.items():
                try:
                    token = resolve_env_refs(client.token, env=self.environ, key=f"clients.{name}")
                except ConfigError as e:
                    log.warning("client %s cannot authenticate: %s", name, e)
                    continue
                if token:
                    digests[name] = token_digest(str(token))
            self._digests, self._version = digests, version
        return self._digests

    def authenticate(self, authorization: str | None) -> Verdict:
        """The client whose token ``authorization`` (an HTTP Authorization header) bears."""
        if not authorization:
            return Verdict(None, "missing Authorization header; send Authorization: Bearer TOKEN")
        if authorization.strip().lower() == BEARER.strip():
            return Verdict(None, "the bearer token is empty")
        if not authorization.lower().startswith(BEARER):
            return Verdict(None, "the Authorization header must be: Bearer TOKEN")
        presented = token_digest(authorization[len(BEARER) :].strip())
        found: str | None = None
        for name, digest in self._current().items():
            if hmac.compare_digest(presented, digest):  # every client compared, always
                found = name
        if found is None:
            return Verdict(None, "the bearer token is not one of a client in the policy")
        return Verdict(found)
