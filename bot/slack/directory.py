"""Who is in a Slack user group, and what a channel is called: Slack lookups with a TTL cache.

:class:`SlackDirectory` implements the service's ``UsergroupDirectory`` with
``usergroups.users.list``. Membership is cached per group for ``ttl_s`` and concurrent
lookups of one group share one call. When Slack cannot answer, a stale cached answer is used
if there is one; otherwise the group is left out, which the policy reads as *empty*: an
unknown membership never grants anything (fails closed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.errors import SlackError

log = logging.getLogger(__name__)

DEFAULT_TTL_S: Final = 300.0
#: users.info and conversations.info answers change rarely; cache them longer.
DEFAULT_INFO_TTL_S: Final = 3600.0
#: Bounds on the caches so a flood of unknown ids cannot grow memory without limit.
MAX_CACHED: Final = 10_000


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What grantbot reads of a channel: its name (without #) and its topic's text."""

    name: str
    topic: str = ""


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    fetched_at: float


class _TtlCache:
    def __init__(self, *, ttl_s: float, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._items: dict[str, _Entry] = {}

    def fresh(self, key: str) -> _Entry | None:
        entry = self._items.get(key)
        if entry is None or self._clock() - entry.fetched_at > self._ttl_s:
            return None
        return entry

    def stale(self, key: str) -> _Entry | None:
        return self._items.get(key)

    def put(self, key: str, value: Any) -> None:
        if len(self._items) >= MAX_CACHED and key not in self._items:
            self._items.pop(next(iter(self._items)))
        self._items[key] = _Entry(value, self._clock())


class SlackDirectory:
    """Slack user groups, users and channels, read through a TTL cache.

    Keyword options: ``ttl_s`` for user-group membership (default 5 minutes),
    ``info_ttl_s`` for users.info / conversations.info, ``clock`` (monotonic seconds).
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        info_ttl_s: float = DEFAULT_INFO_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._groups = _TtlCache(ttl_s=ttl_s, clock=clock)
        self._info = _TtlCache(ttl_s=info_ttl_s, clock=clock)
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    async def members(self, usergroup_ids: Iterable[str]) -> Mapping[str, frozenset[str]]:
        """Members of each user group asked for. A group Slack cannot resolve (and that was
        never cached) is absent from the answer, i.e. counts as empty."""
        wanted = sorted(set(usergroup_ids))
        results = await asyncio.gather(*(self._group(g) for g in wanted))
        return {g: m for g, m in zip(wanted, results, strict=True) if m is not None}

    async def _group(self, usergroup: str) -> frozenset[str] | None:
        entry = self._groups.fresh(usergroup)
        if entry is not None:
            result: frozenset[str] = entry.value
            return result
        fetched: frozenset[str] | None = await self._shared(
            f"ug:{usergroup}", lambda: self._fetch_group(usergroup)
        )
        return fetched

    async def _fetch_group(self, usergroup: str) -> frozenset[str] | None:
        try:
            resp = await self._client.usergroups_users_list(usergroup=usergroup)
            members = frozenset(str(u) for u in resp.get("users") or [])
        except SlackError as e:
            metrics.record_slack_api_error("usergroups.users.list", e)
            stale = self._groups.stale(usergroup)
            log.warning(
                "usergroups.users.list failed for %s (%s); %s",
                usergroup,
                e.code,
                "using the last known members" if stale else "treating it as empty",
            )
            return stale.value if stale is not None else None
        self._groups.put(usergroup, members)
        return members

    async def _shared(self, key: str, fetch: Callable[[], Any]) -> Any:
        """Run ``fetch`` once for concurrent callers asking for the same ``key``."""
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await fetch()
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        else:
            future.set_result(value)
            return value
        finally:
            self._inflight.pop(key, None)

    async def user_info(self, user_id: str) -> Mapping[str, Any] | None:
        """users.info's ``user`` object, or None when Slack does not know the id or fails."""
        key = f"user:{user_id}"
        entry = self._info.fresh(key)
        if entry is not None:
            cached: Mapping[str, Any] | None = entry.value
            return cached
        try:
            resp = await self._client.users_info(user=user_id)
        except SlackError as e:
            log.warning("users.info failed for %s: %s", user_id, e.code)
            return None
        user: Mapping[str, Any] | None = resp.get("user")
        self._info.put(key, user)
        return user

    async def email(self, user_id: str) -> str | None:
        """The email address Slack has for ``user_id`` (users.info with the
        ``users:read.email`` scope), or None when it has none or Slack cannot say."""
        info = await self.user_info(user_id)
        profile = info.get("profile") if info is not None else None
        email = profile.get("email") if isinstance(profile, Mapping) else None
        return str(email) if email else None

    async def channel_name(self, channel_id: str) -> str | None:
        """The channel's name (without #), or None for DMs and unknown channels."""
        info = await self.channel_info(channel_id)
        return info.name if info is not None else None

    async def channel_info(self, channel_id: str) -> ChannelInfo | None:
        """conversations.info's name and topic of a channel (scopes channels:read,
        groups:read), or None for DMs, unknown channels and when Slack cannot answer (not
        cached then, so the next request asks again)."""
        key = f"channel:{channel_id}"
        entry = self._info.fresh(key)
        if entry is not None:
            cached: ChannelInfo | None = entry.value
            return cached
        try:
            resp = await self._client.conversations_info(channel=channel_id)
        except SlackError as e:
            metrics.record_slack_api_error("conversations.info", e)
            log.warning("conversations.info failed for %s: %s", channel_id, e.code)
            return None
        raw = resp.get("channel") or {}
        info = raw if isinstance(raw, dict) else {}
        name = info.get("name")
        topic = info.get("topic")
        topic_text = topic.get("value") if isinstance(topic, dict) else None
        result = (
            ChannelInfo(name=str(name), topic=str(topic_text or ""))
            if name and not info.get("is_im")
            else None
        )
        self._info.put(key, result)
        return result
