"""The on-call lookup the service asks: which of the policy's schedules is a user on call for.

Built from the policy's ``oncall:`` block by :func:`build_oncall_lookup` (or, following policy
reloads, :class:`PolicyOnCallLookup`). Remote sources (PagerDuty, Opsgenie) sit behind a
:class:`~bot.oncall.cached.CachedSource`: an answer is reused for ``ttl_s``, a burst of
concurrent lookups makes one upstream call (single-flight), and a source that fails or is
slower than ``timeout_s`` fails closed: that schedule contributes nobody, and the reason is kept
(reused for ``failure_ttl_s``, so a dead source does not cost every request a full timeout).
Static rotations are computed on each call from ``now``; they cannot fail.

Never open: nothing here turns an error into "on call". :class:`PolicyOnCallLookup` is the
service's :class:`bot.ports.OnCallDirectory`; :meth:`OnCallLookup.check` also says why a
schedule could not be asked, for the request's thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, NotRequired, Protocol, TypedDict, Unpack

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.policy.rules import Policy
from bot.domain.policy.schema import (
    OpsgenieSchedule,
    PagerDutySchedule,
    StaticSchedule,
)
from bot.envrefs import resolve
from bot.errors import ConfigError
from bot.metrics import record_slack_api_error
from bot.oncall.base import (
    Clock,
    HttpClient,
    OnCallResult,
    OnCallSource,
    OnCallUnavailable,
    SlackUserByEmail,
    SlackUserMap,
)
from bot.oncall.cached import (
    DEFAULT_FAILURE_TTL_S,
    DEFAULT_TIMEOUT_S,
    DEFAULT_TTL_S,
    CachedSource,
    FailingSource,
)
from bot.oncall.opsgenie import OpsgenieSource
from bot.oncall.pagerduty import PagerDutySource
from bot.oncall.static import StaticSource

log = logging.getLogger(__name__)

#: Slack's error for users.lookupByEmail when no user has the email.
SLACK_USERS_NOT_FOUND: Final = "users_not_found"
_SLACK_ERROR_RE: Final = re.compile(r"[a-z0-9_]{1,64}")

ScheduleSpec = StaticSchedule | PagerDutySchedule | OpsgenieSchedule


# --- the lookup ------------------------------------------------------------------------------


class OnCallLookup:
    """Who is on call for each schedule of one policy. Safe to call concurrently.

    Answers what :class:`bot.ports.OnCallDirectory` asks (through
    :class:`PolicyOnCallLookup`); call :meth:`aclose` at shutdown (it closes the HTTP
    session when the lookup created it).
    """

    def __init__(
        self,
        sources: Mapping[str, OnCallSource],
        *,
        specs: Mapping[str, ScheduleSpec] | None = None,
        http: HttpClient | None = None,
    ) -> None:
        self._sources = dict(sources)
        self._specs: Mapping[str, ScheduleSpec] = MappingProxyType(dict(specs or {}))
        self._http = http

    @property
    def schedules(self) -> tuple[str, ...]:
        """The schedule names this lookup knows, in policy order."""
        return tuple(self._sources)

    def source(self, schedule: str) -> OnCallSource | None:
        return self._sources.get(schedule)

    def spec(self, schedule: str) -> ScheduleSpec | None:
        return self._specs.get(schedule)

    async def members(self, schedule: str, *, now: float) -> frozenset[str]:
        """Slack user ids on call for ``schedule`` at ``now`` (e.g. whom an escalation tier
        with ``oncall:`` should ask). Raises :class:`OnCallUnavailable` with the reason when
        the schedule is unknown or its source cannot say."""
        source = self._sources.get(schedule)
        if source is None:
            known = ", ".join(self._sources) or "none are defined"
            raise OnCallUnavailable(f'no on-call schedule "{schedule}"; oncall: {known}')
        try:
            return await source.on_call(now=now)
        except OnCallUnavailable:
            raise
        except Exception as e:  # never open, never crash the caller
            log.exception("on-call schedule %s raised unexpectedly", schedule)
            raise OnCallUnavailable(f"{source.label} lookup failed ({type(e).__name__})") from e

    async def check(
        self, user: str, *, now: float, schedules: Iterable[str] | None = None
    ) -> OnCallResult:
        """The schedules ``user`` is on call for at ``now``, and why any could not be asked.

        ``schedules`` limits the question (e.g. to the rule's ``auto_approve`` and escalation
        schedules); None asks every schedule. Sources are asked concurrently, so the wait is
        at most one source's timeout. Never raises for a source's failure.
        """
        names = list(dict.fromkeys(self._sources if schedules is None else schedules))

        async def ask(name: str) -> tuple[str, frozenset[str] | str]:
            try:
                return name, await self.members(name, now=now)
            except OnCallUnavailable as e:
                return name, str(e)

        outcomes = await asyncio.gather(*(ask(n) for n in names))
        on_call = frozenset(n for n, got in outcomes if isinstance(got, frozenset) and user in got)
        failures = {n: got for n, got in outcomes if isinstance(got, str)}
        return OnCallResult(on_call, MappingProxyType(failures))

    async def schedules_for(self, user: str, *, now: float) -> frozenset[str]:
        """Names of the schedules ``user`` is on call for now. Fails closed: a source that is
        down or slow contributes nothing (see :meth:`check` for the reasons)."""
        return (await self.check(user, now=now)).schedules

    @property
    def busy(self) -> bool:
        """True while some upstream fetch is in flight."""
        return any(isinstance(s, CachedSource) and s.busy for s in self._sources.values())

    async def aclose(self, *, close_http: bool = True) -> None:
        """Cancel fetches in flight and close the HTTP session if this lookup owns it."""
        for source in self._sources.values():
            if isinstance(source, CachedSource):
                await source.aclose()
        if close_http and self._http is not None:
            await self._http.aclose()


@dataclass(frozen=True, slots=True)
class _Options:
    env: Mapping[str, str]
    http: HttpClient
    users: SlackUserMap
    clock: Clock
    ttl_s: float
    failure_ttl_s: float
    timeout_s: float


def _secret(name: str, field: str, ref: str, env: Mapping[str, str]) -> str:
    key = f"oncall.{name}.{field}"
    value = str(resolve(ref, env=env, key=key))
    if not value.strip():
        raise ConfigError(f"the environment variable behind {key} is empty")
    return value


def _remote(name: str, spec: PagerDutySchedule | OpsgenieSchedule, opts: _Options) -> OnCallSource:
    source: OnCallSource
    try:
        if isinstance(spec, PagerDutySchedule):
            source = PagerDutySource(
                token=_secret(name, "token", spec.token, opts.env),
                schedule_id=spec.schedule_id,
                escalation_policy_id=spec.escalation_policy_id,
                base_url=spec.base_url,
                http=opts.http,
                users=opts.users,
            )
        else:
            source = OpsgenieSource(
                api_key=_secret(name, "api_key", spec.api_key, opts.env),
                schedule=spec.schedule,
                base_url=spec.base_url,
                http=opts.http,
                users=opts.users,
            )
    except ConfigError as e:  # names the variable and key, never a value
        label = "PagerDuty" if isinstance(spec, PagerDutySchedule) else "Opsgenie"
        log.warning("on-call schedule %s cannot be asked: %s", name, e)
        return FailingSource(label=label, reason=str(e))
    return CachedSource(
        source,
        schedule=name,
        ttl_s=opts.ttl_s,
        failure_ttl_s=opts.failure_ttl_s,
        timeout_s=opts.timeout_s,
        clock=opts.clock,
    )


def _build(
    oncall: Mapping[str, ScheduleSpec], opts: _Options, *, previous: OnCallLookup | None
) -> OnCallLookup:
    sources: dict[str, OnCallSource] = {}
    for name, spec in oncall.items():
        old = previous.source(name) if previous is not None else None
        reusable = old is not None and not isinstance(old, FailingSource)
        if reusable and old is not None and previous is not None and previous.spec(name) == spec:
            sources[name] = old  # unchanged: keep its cache (a failing one is retried)
        elif isinstance(spec, StaticSchedule):
            sources[name] = StaticSource(spec)
        else:
            sources[name] = _remote(name, spec, opts)
    return OnCallLookup(sources, specs=oncall, http=opts.http)


class LookupOptions(TypedDict):
    """How a lookup reaches its sources, as keyword arguments (defaults: those of
    :class:`PolicyOnCallLookup`, the one place they are given)."""

    env: Mapping[str, str]
    lookup_slack_user_by_email: SlackUserByEmail
    http: NotRequired[aiohttp.ClientSession | None]
    clock: NotRequired[Clock]
    ttl_s: NotRequired[float]
    failure_ttl_s: NotRequired[float]
    timeout_s: NotRequired[float]


def build_oncall_lookup(policy: Policy, **options: Unpack[LookupOptions]) -> OnCallLookup:
    """An :class:`OnCallLookup` for ``policy.oncall``.

    ``${VAR}`` tokens and API keys are resolved from ``env`` now; a schedule whose variable is
    unset (or empty) is built as always failing closed with a reason naming the variable, so
    one bad schedule does not stop the bot. ``lookup_slack_user_by_email`` maps PagerDuty and
    Opsgenie emails to Slack users (see :func:`slack_lookup_by_email`); its answers are
    cached. ``http`` is borrowed when given (the caller closes it); otherwise the lookup
    creates a session on first use and :meth:`OnCallLookup.aclose` closes it. ``clock``
    (monotonic seconds) ages the caches; ``ttl_s``, ``failure_ttl_s`` and ``timeout_s`` are
    as in :class:`CachedSource`.
    """
    # A reloadable lookup over a policy that never changes, built once: the options are
    # assembled in one place (PolicyOnCallLookup.__init__).
    return PolicyOnCallLookup(_Fixed(policy), **options).current


# --- following policy reloads ----------------------------------------------------------------


class _Versioned(Protocol):
    @property
    def policy(self) -> Policy: ...
    @property
    def version(self) -> str: ...


class PolicySource(Protocol):
    """What :class:`~bot.policy_holder.PolicyHolder` offers: the current loaded policy."""

    @property
    def current(self) -> _Versioned: ...


@dataclass(frozen=True, slots=True)
class _Fixed:
    """One policy as a :class:`PolicySource` whose version never changes."""

    policy: Policy
    version: str = ""

    @property
    def current(self) -> _Fixed:
        return self


class PolicyOnCallLookup:
    """An on-call lookup that follows a reloadable policy (a PolicyHolder).

    On each call it compares the policy version with the one it built from; on a change it
    rebuilds, keeping the cache of every schedule whose definition did not change (so a
    member removed from a static rotation stops counting at once, and a new schedule is
    known at once). Same methods as :class:`OnCallLookup`; one HTTP session and one Slack
    mapping cache are shared by every version.
    """

    def __init__(
        self,
        policy: PolicySource,
        *,
        env: Mapping[str, str],
        lookup_slack_user_by_email: SlackUserByEmail,
        http: aiohttp.ClientSession | None = None,
        clock: Clock = time.monotonic,
        ttl_s: float = DEFAULT_TTL_S,
        failure_ttl_s: float = DEFAULT_FAILURE_TTL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._policy = policy
        self._opts = _Options(
            env=env,
            http=HttpClient(http),
            users=SlackUserMap(lookup_slack_user_by_email, clock=clock),
            clock=clock,
            ttl_s=ttl_s,
            failure_ttl_s=failure_ttl_s,
            timeout_s=timeout_s,
        )
        self._version: str | None = None
        self._lookup: OnCallLookup | None = None
        self._retired: list[OnCallLookup] = []

    @property
    def current(self) -> OnCallLookup:
        """The lookup for the current policy version (rebuilt when the version changed)."""
        loaded = self._policy.current
        if self._lookup is None or loaded.version != self._version:
            if self._lookup is not None:
                self._retired = [lk for lk in (*self._retired, self._lookup) if lk.busy]
            self._lookup = _build(loaded.policy.oncall, self._opts, previous=self._lookup)
            self._version = loaded.version
        return self._lookup

    async def members(self, schedule: str, *, now: float) -> frozenset[str]:
        return await self.current.members(schedule, now=now)

    async def check(
        self, user: str, *, now: float, schedules: Iterable[str] | None = None
    ) -> OnCallResult:
        return await self.current.check(user, now=now, schedules=schedules)

    async def schedules_for(self, user: str, *, now: float) -> frozenset[str]:
        return await self.current.schedules_for(user, now=now)

    async def aclose(self) -> None:
        for lookup in (*self._retired, *([self._lookup] if self._lookup else [])):
            await lookup.aclose(close_http=False)
        await self._opts.http.aclose()


# --- Slack's side ----------------------------------------------------------------------------


def slack_lookup_by_email(client: AsyncWebClient) -> SlackUserByEmail:
    """A :data:`~bot.oncall.base.SlackUserByEmail` over Slack's users.lookupByEmail (scope
    ``users:read.email``). ``users_not_found`` (which also covers deactivated accounts), a
    deleted user and a bot answer None; any other Slack error raises
    :class:`~bot.oncall.base.OnCallUnavailable` naming Slack's error code."""

    async def lookup(email: str) -> str | None:
        try:
            response = await client.users_lookupByEmail(email=email)
        except SlackApiError as e:
            error = e.response.get("error")
            if error == SLACK_USERS_NOT_FOUND:
                return None
            record_slack_api_error("users.lookupByEmail", e)
            # Slack's error codes (missing_scope, ratelimited, ...) are safe and say what to fix.
            code = error if isinstance(error, str) and _SLACK_ERROR_RE.fullmatch(error) else None
            raise OnCallUnavailable(
                f"Slack users.lookupByEmail failed ({code or type(e).__name__})"
            ) from e
        user = response.get("user")
        if not isinstance(user, dict) or user.get("deleted") or user.get("is_bot"):
            return None
        user_id = user.get("id")
        return user_id if isinstance(user_id, str) else None

    return lookup
