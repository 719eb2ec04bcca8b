"""Webhook: POST grant and revoke events to an internal service that grants access itself.

Body (JSON, compact, keys sorted)::

    {"event": "grant"|"revoke", "grant_id", "user", "resource", "role", "expires_at",
     "sent_at", "idempotency_key", "data": {...role settings data}}

The idempotency key is ``grant:<grant_id>:<expires_at, whole seconds>`` for a grant and
``revoke:<grant_id>`` for a revoke. An extended grant is sent again as a ``grant`` event with
its later ``expires_at``, so under a new key: receivers that deduplicate on the key must
apply it (access then lasts until the new expiry).

Signed with HMAC-SHA256 over ``f"{timestamp}.{body}"`` using the shared ``secret``; headers
``X-Grantbot-Timestamp: <unix seconds>`` and ``X-Grantbot-Signature: v1=<hex>``. Receivers
should recompute the signature, compare in constant time, and refuse stale timestamps.
Every attempt is signed afresh, so a late retry carries a fresh timestamp.

Delivery: a 2xx is success. 5xx, 429 and connection errors are retried with exponential
backoff and full jitter, up to ``max_attempts``; still failing -> TargetUnavailable. Any other
4xx is a non-retryable ProviderError (the receiver refused the event). Receivers must answer
2xx to a repeated event (revoke of something already gone included): that is how issue and
revoke stay idempotent across retries.

The receiver cannot be read back: ``check`` reports what this process knows (not revoked by
it and not past expiry) and ``live_grant_ids`` returns grants this process issued and has not
revoked since it started. Receivers should end access at ``expires_at`` themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final, Literal
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, SecretStr, field_validator

from bot.domain.credentials import Credential, CredentialField
from bot.envrefs import has_reference
from bot.errors import ProviderError, TargetUnavailable
from bot.providers.base import GrantContext, ProviderSettings, ensure_not_expired
from bot.providers.naming import check_grant_id
from bot.providers.validation import parse_role_settings

log = logging.getLogger(__name__)

TIMESTAMP_HEADER: Final = "X-Grantbot-Timestamp"
SIGNATURE_HEADER: Final = "X-Grantbot-Signature"
SIGNATURE_VERSION: Final = "v1"
#: A 4xx that still means "try again later".
RETRYABLE_4XX: Final = frozenset({408, 429})
#: HMAC keys shorter than this are guessable; 32 bytes of base64/hex is the usual size.
MIN_SECRET_CHARS: Final = 16
JsonScalar = str | int | float | bool | None


def sign(secret: str, timestamp: str, body: str) -> str:
    """``v1=<hex>``: HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


class WebhookSettings(ProviderSettings):
    """Resource-level settings: where to POST, the HMAC secret, and the retry budget."""

    type: Literal["webhook"] = "webhook"
    url: str
    secret: SecretStr
    timeout_s: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=10.0, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if has_reference(v):
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        return v

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if not has_reference(raw) and len(raw) < MIN_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters")
        return v


class WebhookRoleSettings(ProviderSettings):
    """Role-level settings: ``data`` is passed through in every event of that role."""

    data: dict[str, JsonScalar] = Field(default_factory=dict)


class WebhookProvider:
    """Signed, retried event delivery; see the module docstring for the full contract."""

    type: ClassVar[str] = "webhook"

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        # What this process delivered, for check/live_grant_ids (the receiver has no read API).
        self._issued: set[str] = set()
        self._revoked: set[str] = set()

    @property
    def session(self) -> aiohttp.ClientSession:
        """Created on first use, inside the running event loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s)
            )
        return self._session

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))] after ``attempt``."""
        cap = min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2 ** (attempt - 1))
        return random.uniform(0, cap)

    def _payload(self, event: str, ctx: GrantContext, data: dict[str, JsonScalar]) -> str:
        payload: dict[str, Any] = {
            "event": event,
            "grant_id": ctx.grant_id,
            "user": ctx.user,
            "resource": ctx.resource,
            "role": ctx.role,
            "expires_at": ctx.expires_at,
            "sent_at": self.clock(),
            "idempotency_key": _idempotency_key(event, ctx),
            "data": data,
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))

    async def _deliver(self, event: str, ctx: GrantContext, data: dict[str, JsonScalar]) -> None:
        body = self._payload(event, ctx, data)
        secret = self.settings.secret.get_secret_value()
        last = ""
        for attempt in range(1, self.settings.max_attempts + 1):
            timestamp = str(int(self.clock()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(secret, timestamp, body),
            }
            try:
                async with self.session.post(self.settings.url, data=body, headers=headers) as r:
                    status = r.status
                    await r.read()
            except (aiohttp.ClientError, TimeoutError) as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if 200 <= status < 300:
                    log.info("webhook: %s for grant %s delivered", event, ctx.grant_id)
                    return
                if 400 <= status < 500 and status not in RETRYABLE_4XX:
                    raise ProviderError(
                        f"webhook: {event} for {ctx.grant_id} refused with HTTP {status}"
                    )
                last = f"HTTP {status}"
            if attempt < self.settings.max_attempts:
                delay = self.backoff_s(attempt)
                log.warning(
                    "webhook: %s for grant %s attempt %d/%d failed (%s); retrying in %.2fs",
                    event,
                    ctx.grant_id,
                    attempt,
                    self.settings.max_attempts,
                    last,
                    delay,
                )
                await self.sleep(delay)
        raise TargetUnavailable(
            f"webhook: {event} for {ctx.grant_id} failed after "
            f"{self.settings.max_attempts} attempts: {last}"
        )

    async def issue(self, ctx: GrantContext, *, now: float) -> Credential:
        ensure_not_expired(ctx, now=now)
        check_grant_id(ctx.grant_id)
        data = parse_role_settings(WebhookRoleSettings, ctx).data
        await self._deliver("grant", ctx, data)
        self._issued.add(ctx.grant_id)
        self._revoked.discard(ctx.grant_id)
        return Credential(
            ref=ctx.grant_id,
            expires_at=ctx.expires_at,
            fields=(
                CredentialField(
                    "note", f"access to {ctx.resource} is granted by an internal service"
                ),
            ),
        )

    async def revoke(self, ctx: GrantContext) -> None:
        try:
            data = parse_role_settings(WebhookRoleSettings, ctx).data
        except ProviderError:
            # A policy edit must never block taking access away: send the event without it.
            log.warning("webhook: role settings of %s are invalid; revoking without data", ctx.role)
            data = {}
        await self._deliver("revoke", ctx, data)
        self._issued.discard(ctx.grant_id)
        self._revoked.add(ctx.grant_id)

    async def check(self, ctx: GrantContext) -> bool:
        """Not revoked by this process and not past expiry (the receiver cannot be asked)."""
        return ctx.grant_id not in self._revoked and ctx.expires_at > self.clock()

    async def live_grant_ids(self) -> set[str]:
        """Grants this process delivered and has not revoked (nothing after a restart)."""
        return set(self._issued)

    async def health(self) -> None:
        """The receiver's host accepts TCP connections (it has no health endpoint to ask)."""
        parts = urlsplit(self.settings.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, port), self.settings.timeout_s
            )
        except (OSError, TimeoutError) as e:
            raise TargetUnavailable(f"webhook: {parts.hostname}:{port} is unreachable: {e}") from e
        writer.close()
        await writer.wait_closed()

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _idempotency_key(event: str, ctx: GrantContext) -> str:
    """Same key for a retried delivery; a new one when an extension moves the expiry."""
    if event == "revoke":
        return f"revoke:{ctx.grant_id}"
    return f"{event}:{ctx.grant_id}:{int(ctx.expires_at)}"
