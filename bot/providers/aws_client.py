"""AWS plumbing shared by the ``aws_sts`` and ``aws_identity_center`` providers.

Settings every AWS resource has (region, an optional endpoint, optional static credentials
as ``${VAR}`` references, time-outs), boto3 clients built on first use, and one way to call
them: in a worker thread (boto3 is blocking; the event loop never waits on it) with botocore's
errors translated at the call -- unreachable, throttled or failing on AWS's side is
:class:`~bot.errors.TargetUnavailable` (retried later), anything AWS refused is
:class:`~bot.errors.ProviderError` naming the operation and AWS's error code.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore import exceptions as boto_errors
from botocore.config import Config
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from bot.domain.duration import parse_duration
from bot.envrefs import has_reference
from bot.errors import ProviderError, TargetUnavailable, UsageError
from bot.providers.base import ProviderSettings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_identitystore import IdentityStoreClient
    from mypy_boto3_sso_admin import SSOAdminClient
    from mypy_boto3_sts import STSClient

T = TypeVar("T")

# At DEBUG botocore logs every response body (an AssumeRole response carries the secret key
# and session token) and every signed request's headers (X-Amz-Security-Token): its loggers
# never go below INFO, whatever the root level is.
logging.getLogger("botocore").setLevel(logging.INFO)

#: AWS error codes that mean "not now" rather than "no": the call is retried later.
RETRYABLE_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_REGION_RE: Final = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
#: A 12-digit AWS account id.
ACCOUNT_ID_RE: Final = re.compile(r"^\d{12}$")


def _to_seconds(value: object) -> object:
    """A duration setting written as in policies.yaml (``1h``, ``12h``) -> int seconds."""
    if isinstance(value, bool | int):
        raise ValueError(f"{value} is not a duration; write it with a unit, e.g. 1h or 12h")
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except UsageError as e:
            raise ValueError(str(e).split(";")[0]) from None
    return value


#: A duration in provider settings, written like ``90m`` or ``12h``, held as int seconds.
DurationSetting = Annotated[int, BeforeValidator(_to_seconds)]


def matching(pattern: re.Pattern[str], problem: str) -> AfterValidator:
    """A string setting in ``pattern``'s form, or a ``${VAR}`` reference (its value is checked
    by AWS once resolved); otherwise the setting's error is ``problem``. Use as
    ``Annotated[str, matching(...)]``."""

    def check(value: str) -> str:
        if not has_reference(value) and not pattern.match(value):
            raise ValueError(problem)
        return value

    return AfterValidator(check)


class AWSSettings(ProviderSettings):
    """Resource-level settings of every AWS provider.

    Without ``access_key_id``/``secret_access_key`` grantbot uses boto3's own credential
    chain (environment, shared config, the instance or task role), which is the usual way.
    """

    region: Annotated[str, matching(_REGION_RE, "must be an AWS region such as us-east-1")] = (
        "us-east-1"
    )
    #: Another endpoint than AWS's public one (a VPC endpoint; a test server).
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    #: botocore's own retries per call (standard mode: throttling and 5xx, with backoff).
    max_attempts: int = Field(default=3, ge=1, le=10)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is None or has_reference(v):
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        return v

    @model_validator(mode="after")
    def _key_pair(self) -> AWSSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together (or neither)")
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        return self


class AWSClients:
    """boto3 clients of one AWS resource, made on first use (in a thread: building one reads
    botocore's service models, tens of milliseconds), then shared (boto3 clients are
    thread-safe)."""

    def __init__(self, settings: AWSSettings, *, what: str) -> None:
        self.settings = settings
        self.what = what
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                s = self.settings
                session = boto3.session.Session(
                    aws_access_key_id=s.access_key_id,
                    aws_secret_access_key=(
                        s.secret_access_key.get_secret_value() if s.secret_access_key else None
                    ),
                    aws_session_token=(
                        s.session_token.get_secret_value() if s.session_token else None
                    ),
                    region_name=s.region,
                )
                config = Config(
                    connect_timeout=s.timeout_s,
                    read_timeout=s.timeout_s,
                    retries={"max_attempts": s.max_attempts, "mode": "standard"},
                )
                client = session.client(service, endpoint_url=s.endpoint_url, config=config)  # type: ignore[call-overload]
                self._clients[service] = client
            return client

    def sts(self) -> STSClient:
        client: STSClient = self._client("sts")
        return client

    def iam(self) -> IAMClient:
        client: IAMClient = self._client("iam")
        return client

    def sso_admin(self) -> SSOAdminClient:
        client: SSOAdminClient = self._client("sso-admin")
        return client

    def identitystore(self) -> IdentityStoreClient:
        client: IdentityStoreClient = self._client("identitystore")
        return client

    async def run(self, call: Callable[[AWSClients], T], *, action: str) -> T:
        """``call(self)`` in a worker thread, its botocore errors translated (see the module)."""
        try:
            return await asyncio.to_thread(call, self)
        except boto_errors.ClientError as e:
            raise translated(e, what=self.what, action=action) from e
        except (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError) as e:
            raise ProviderError(f"{self.what}: {action} failed: no usable AWS credentials") from e
        except (boto_errors.ConnectionError, boto_errors.HTTPClientError) as e:
            raise TargetUnavailable(
                f"{self.what}: {action} failed, AWS unreachable: {type(e).__name__}"
            ) from e
        except boto_errors.BotoCoreError as e:
            raise ProviderError(f"{self.what}: {action} failed: {type(e).__name__}") from e

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()


def error_code(error: boto_errors.ClientError) -> str:
    """AWS's error code of ``error`` (``AccessDenied``, ``NoSuchEntity``...)."""
    return str(error.response.get("Error", {}).get("Code") or "")


def translated(error: boto_errors.ClientError, *, what: str, action: str) -> ProviderError:
    """A ClientError as TargetUnavailable (throttled, 5xx: try later) or ProviderError."""
    code = error_code(error)
    message = str(error.response.get("Error", {}).get("Message") or "").strip()
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    text = f"{what}: {action} failed: {code or 'error'}" + (f": {message}" if message else "")
    if code in RETRYABLE_CODES or status >= 500:
        return TargetUnavailable(text)
    return ProviderError(text)


def is_code(error: BaseException, *codes: str) -> bool:
    """True when ``error`` (or its cause) is a ClientError with one of ``codes``."""
    cause = error if isinstance(error, boto_errors.ClientError) else error.__cause__
    return isinstance(cause, boto_errors.ClientError) and error_code(cause) in codes
