"""Slack's v0 request signature, and how one request travels: validly signed or not, on time or
stale, with an odd timestamp, as Slack's own retry."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

# Slack rejects requests whose timestamp is more than five minutes from now (Verifying requests
# from Slack, docs.slack.dev/authentication/verifying-requests-from-slack); this is past that.
STALE_TIMESTAMP_OFFSET_S = -(5 * 60 + 30)
DEFAULT_RETRY_REASON = "http_timeout"  # Events API retries: http_timeout, http_error, ...


class SignatureMode(StrEnum):
    VALID = "valid"
    BAD = "bad"  # well formed, made with the wrong secret
    MISSING = "missing"  # no X-Slack-Signature header at all


@dataclass(frozen=True)
class Delivery:
    """How one request travels: its signature, clock skew, and Slack's retry headers.

    ``timestamp`` sends that exact X-Slack-Request-Timestamp value instead of the clock's
    (``"abc"``, ``""``, ``"1e9"``), signed with it when the signature is valid; ``no_timestamp``
    leaves the header out."""

    signature: SignatureMode = SignatureMode.VALID
    timestamp_offset_s: int = 0
    retry_num: int | None = None
    retry_reason: str | None = None
    timestamp: str | None = None
    no_timestamp: bool = False

    @classmethod
    def bad_signature(cls) -> Delivery:
        return cls(signature=SignatureMode.BAD)

    @classmethod
    def unsigned(cls) -> Delivery:
        return cls(signature=SignatureMode.MISSING)

    @classmethod
    def stale(cls) -> Delivery:
        return cls(timestamp_offset_s=STALE_TIMESTAMP_OFFSET_S)

    @classmethod
    def retry(cls, num: int, reason: str = DEFAULT_RETRY_REASON) -> Delivery:
        return cls(retry_num=num, retry_reason=reason)

    @classmethod
    def odd_timestamp(cls, value: str | None, *, signed: bool = True) -> Delivery:
        """X-Slack-Request-Timestamp as ``value`` (None: no such header), signed with it
        (``signed``) or not signed at all."""
        return cls(
            signature=SignatureMode.VALID if signed else SignatureMode.MISSING,
            timestamp=value,
            no_timestamp=value is None,
        )


class RequestSigner:
    """Slack's v0 request signature, as slack_sdk's SignatureVerifier checks it."""

    VERSION = "v0"

    def __init__(self, signing_secret: str) -> None:
        if not signing_secret:
            raise ValueError("signing_secret must not be empty")
        self._secret = signing_secret.encode()

    def signature(self, body: bytes, timestamp: str) -> str:
        base = f"{self.VERSION}:{timestamp}:".encode() + body
        return f"{self.VERSION}=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def headers(
        self, body: bytes, *, timestamp: int | str, mode: SignatureMode, send_timestamp: bool = True
    ) -> dict[str, str]:
        ts = str(timestamp)
        headers = {"X-Slack-Request-Timestamp": ts} if send_timestamp else {}
        if mode is SignatureMode.VALID:
            headers["X-Slack-Signature"] = self.signature(body, ts)
        elif mode is SignatureMode.BAD:
            wrong = RequestSigner(secrets.token_hex(16))
            headers["X-Slack-Signature"] = wrong.signature(body, ts)
        return headers
