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
from typing import Final

from bot.domain.policy.rules import LoadedPolicy
from bot.domain.policy.schema import Client
from bot.envrefs import resolve as resolve_env_refs
from bot.errors import ConfigError, PolicyIssue
from bot.policy_holder import PolicyHolder

log = logging.getLogger(__name__)

BEARER = "bearer "


#: The shortest bearer token a client may have (``openssl rand -base64 32`` gives 44).
MIN_TOKEN_CHARS: Final = 32


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The clients of a policy with their token hashes (``digests``: those that may
    authenticate), what is wrong (``errors``: a token too short, two clients with the same
    token; those clients are left out) and who is disabled (``warnings``: a variable unset).
    No message ever contains a token."""

    digests: dict[str, bytes]
    errors: list[str]
    warnings: list[str]


def check_client_tokens(clients: Mapping[str, Client], *, environ: Mapping[str, str]) -> TokenCheck:
    """Each client's token resolved from ``environ`` and checked (see :class:`TokenCheck`)."""
    digests: dict[str, bytes] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for name, client in clients.items():
        try:
            token = str(resolve_env_refs(client.token, env=environ, key=f"clients.{name}"))
        except ConfigError as e:
            warnings.append(f"client {name} is disabled (it cannot authenticate): {e}")
            continue
        if len(token) < MIN_TOKEN_CHARS:
            errors.append(
                f"client {name}: its token ({client.token}) is shorter than {MIN_TOKEN_CHARS}"
                " characters; make a long random one (openssl rand -base64 32)"
            )
            continue
        digests[name] = token_digest(token)
    by_digest: dict[bytes, list[str]] = {}
    for name, digest in digests.items():
        by_digest.setdefault(digest, []).append(name)
    for names in by_digest.values():
        if len(names) > 1:
            errors.append(
                f"clients {', '.join(names)} have the same token: each client needs its own,"
                " or a call could not say which one it is"
            )
            for name in names:
                del digests[name]
    return TokenCheck(digests=digests, errors=errors, warnings=warnings)


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

    def current(self) -> dict[str, bytes]:
        """The token hashes of the current policy's clients that may authenticate; each
        problem logged once per policy version (an ERROR per token too short or shared, a
        WARNING per client disabled because its variable is unset). ``grantbot serve`` calls
        it at start, so those lines come then, not at the first call."""
        return self._current()

    def _current(self) -> dict[str, bytes]:
        version = self.policy.version
        if version != self._version:
            checked = check_client_tokens(self.policy.current.policy.clients, environ=self.environ)
            for problem in checked.errors:  # after a reload: those clients cannot authenticate
                log.error("%s", problem)
            for warning in checked.warnings:
                log.warning("%s", warning)
            self._digests, self._version = checked.digests, version
        return self._digests

    def authenticate(self, authorization: str | None) -> Verdict:
        """The client whose token ``authorization`` (an HTTP Authorization header) bears."""
        if not authorization:
            return Verdict(
                None,
                "missing Authorization header; send a bearer token in the Authorization header",
            )
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


def client_token_issues(
    loaded: LoadedPolicy, *, environ: Mapping[str, str]
) -> tuple[list[PolicyIssue], list[PolicyIssue]]:
    """``grantbot policy check``'s view of the clients' tokens in ``environ``: (errors,
    warnings), as issues of the policy file's ``clients``."""
    checked = check_client_tokens(loaded.policy.clients, environ=environ)

    def issues(messages: list[str], severity: str) -> list[PolicyIssue]:
        return [PolicyIssue(loaded.path, None, "clients", m, severity) for m in messages]

    return issues(checked.errors, "error"), issues(checked.warnings, "warning")
