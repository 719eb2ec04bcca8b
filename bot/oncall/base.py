"""What every on-call source shares: the result and error types, the source Protocol, the
HTTP session holder, and the email -> Slack user mapping PagerDuty and Opsgenie both need.

The rule everything here keeps: an error can never make someone on call. A source that cannot
answer raises :class:`OnCallUnavailable` with a reason a person can read (and which names no
secret); the lookup turns that into "on call for nothing from this source" plus the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Protocol, TypeVar, cast

import aiohttp

from bot.errors import GrantbotError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ``await lookup(email)`` -> the Slack user id with that email, or None when Slack has no
#: (active) user with it. Any other failure (Slack down, bad token) is raised, not None.
SlackUserByEmail = Callable[[str], Awaitable[str | None]]
#: Seconds from any fixed origin; only differences are used (``time.monotonic`` by default).
Clock = Callable[[], float]

#: How long a found email -> Slack user mapping is reused. People rarely change email.
SLACK_USER_TTL_S: Final = 3_600.0
#: How long "Slack has no user with this email" is believed before asking again.
SLACK_MISS_TTL_S: Final = 300.0
#: Most characters of an upstream detail quoted in a reason.
_MAX_DETAIL_CHARS: Final = 120


class OnCallUnavailable(GrantbotError):
    """An on-call source could not say who is on call. The message is the reason shown to
    people (and logged); it never contains a token or key."""


@dataclass(frozen=True, slots=True)
class OnCallResult:
    """Which schedules a user is on call for, and why any schedule could not be asked.

    ``schedules`` only ever holds schedules whose source answered and listed the user;
    ``failures`` maps each schedule that could not be asked to its reason. A schedule in
    ``failures`` is never in ``schedules``.
    """

    schedules: frozenset[str] = frozenset()
    failures: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def degraded(self) -> bool:
        """True when some schedule could not be asked (so the answer may be too small)."""
        return bool(self.failures)

    def explain(self) -> str:
        """One line for a Slack thread, e.g. ``on-call schedule primary: PagerDuty did not
        answer within 2.5 s``; empty when nothing failed."""
        return "; ".join(f"on-call schedule {name}: {why}" for name, why in self.failures.items())


class OnCallSource(Protocol):
    """One schedule's source of truth."""

    #: Names the kind of source in reasons and logs ("PagerDuty", "static rotation").
    label: str

    async def on_call(self, *, now: float) -> frozenset[str]:
        """Slack user ids on call at ``now`` (Unix seconds). Raises :class:`OnCallUnavailable`
        with the reason when the source cannot say; never returns a guess."""
        ...


class HttpClient:
    """An aiohttp session that is either borrowed (the caller closes it) or created on first
    use inside the running loop and owned (closed by :meth:`aclose`)."""

    def __init__(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        self._owned = session is None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owned and self._session.closed):
            self._session = aiohttp.ClientSession()
            self._owned = True
        return self._session

    async def aclose(self) -> None:
        """Close the session when it is ours; a borrowed one is left to its owner."""
        if self._owned and self._session is not None and not self._session.closed:
            await self._session.close()


def _detail(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL_CHARS else text[: _MAX_DETAIL_CHARS - 3] + "..."


def status_reason(service: str, status: int) -> str:
    """The reason for an HTTP error ``status`` from ``service``; names no credential."""
    if status == 401:
        return f"{service} rejected the API credentials (HTTP 401)"
    if status == 403:
        return f"{service} refused access to the schedule (HTTP 403)"
    if status == 404:
        return f"{service} does not know the schedule (HTTP 404)"
    if status == 429:
        return f"{service} is rate limiting grantbot (HTTP 429)"
    if status >= 500:
        return f"{service} is failing (HTTP {status})"
    return f"{service} answered HTTP {status}"


async def get_json(
    http: HttpClient,
    url: str,
    *,
    service: str,
    params: Iterable[tuple[str, str]] = (),
    headers: Mapping[str, str],
) -> Any:
    """GET ``url`` and return its decoded JSON body.

    Raises :class:`OnCallUnavailable` for a connection failure, a non-2xx status or a body
    that is not JSON; the reason names ``service`` and the failure, never a header value
    (credentials travel in ``headers``). Timing out is the caller's job (one deadline for
    the whole lookup, pagination included).
    """
    try:
        async with http.session().get(url, params=list(params), headers=dict(headers)) as resp:
            if not 200 <= resp.status < 300:
                raise OnCallUnavailable(status_reason(service, resp.status))
            try:
                return await resp.json(content_type=None)
            except ValueError as e:
                raise OnCallUnavailable(f"{service} sent a body that is not JSON") from e
    except aiohttp.ClientError as e:
        # ClientConnectorError's text is "Cannot connect to host h:p ..." -- no credentials.
        raise OnCallUnavailable(
            f"{service} is unreachable ({type(e).__name__}: {_detail(str(e))})"
        ) from e


async def gather_all(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Await all of ``aws`` concurrently; after every one has finished, raise the first
    error (so no sibling is left running or with an unretrieved exception)."""
    outcomes = await asyncio.gather(*aws, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast("list[T]", outcomes)


def utc_iso(now: float) -> str:
    """``now`` as ISO 8601 in UTC to the second, e.g. ``2026-01-05T09:00:00Z``."""
    return datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _Mapped:
    slack_id: str | None
    expires_at: float


class SlackUserMap:
    """Email -> Slack user id through ``lookup`` (Slack's users.lookupByEmail), cached.

    Found users are reused for ``ttl_s``, unknown emails for ``miss_ttl_s``; a failure is not
    cached. Emails compare case-insensitively.
    """

    def __init__(
        self,
        lookup: SlackUserByEmail,
        *,
        clock: Clock,
        ttl_s: float = SLACK_USER_TTL_S,
        miss_ttl_s: float = SLACK_MISS_TTL_S,
    ) -> None:
        self._lookup = lookup
        self._clock = clock
        self._ttl_s = ttl_s
        self._miss_ttl_s = miss_ttl_s
        self._cache: dict[str, _Mapped] = {}

    async def slack_id(self, email: str) -> str | None:
        """The Slack user id for ``email``, or None when Slack has none. Raises
        :class:`OnCallUnavailable` when Slack could not be asked."""
        key = email.strip().lower()
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and now < hit.expires_at:
            return hit.slack_id
        try:
            found = await self._lookup(key)
        except OnCallUnavailable:
            raise
        except Exception as e:  # the Slack layer's errors: reason by type, never by content
            raise OnCallUnavailable(f"Slack users.lookupByEmail failed ({type(e).__name__})") from e
        ttl = self._ttl_s if found is not None else self._miss_ttl_s
        self._cache[key] = _Mapped(found, now + ttl)
        if found is None:
            log.info("on-call person %s has no Slack account; not counted as on call", key)
        return found

    async def slack_ids(self, emails: Iterable[str]) -> frozenset[str]:
        """The Slack ids of those ``emails`` that have one (looked up concurrently)."""
        unique = sorted({e.strip().lower() for e in emails if e.strip()})
        found = await gather_all(self.slack_id(e) for e in unique)
        return frozenset(s for s in found if s is not None)
