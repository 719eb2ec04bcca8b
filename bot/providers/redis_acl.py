"""Redis ACL: one ACL user ``gb_<grant>`` per grant, with the policy's command and key rules.

Issue runs ``ACL SETUSER gb_... reset on >password <keys> <channels> <commands>`` (one atomic
command; ``reset`` first, so a re-issue replaces the password and rules instead of adding to
them). Revoke switches the user off, kills its connections (``CLIENT KILL USER``) and deletes
it (``ACL DELUSER``). Revoking many grants at once (:meth:`RedisACLProvider.revoke_many`, what
the revoker uses for a batch of expiries) is ``ACL DELUSER`` with many names, pipelined: in
Redis (6.0 and later) deleting a user also closes every connection authenticated as it, in the
same command, so no new AUTH can slip in between.

No target-side expiry: Redis ACL users have no expiry time. **The bot's revocation is what
ends this access**. ACL users live in the server's memory: unless an operator runs ACL SAVE
(with an aclfile), a Redis restart removes them, which fails closed.

The admin in ``url`` needs the ``ACL`` and ``CLIENT`` commands (e.g. ``+@admin``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Final, Literal
from urllib.parse import quote, urlsplit

import redis.asyncio as aioredis
from pydantic import Field, SecretStr, ValidationInfo, field_validator
from redis import exceptions as redis_errors

from bot.domain.credentials import Credential
from bot.envrefs import has_reference
from bot.errors import ProviderError
from bot.providers.base import GrantContext, ProviderSettings, ensure_not_expired, target_errors
from bot.providers.logins import login_credential
from bot.providers.naming import grant_id_from_login, login_name
from bot.providers.passwords import new_password
from bot.providers.validation import parse_role_settings

log = logging.getLogger(__name__)

DEFAULT_PORT: Final = 6379
_URL_SCHEMES: Final = frozenset({"redis", "rediss"})
# Printable ASCII without spaces: one ACL rule is one argument.
_PATTERN: Final = r"[!-~]+"
_COMMAND_RULE_RE: Final = re.compile(r"^[+-](@[a-z_]+|[a-z][a-z0-9_.-]*(\|[a-z0-9_.-]+)?)$")
_KEY_RULE_RE: Final = re.compile(rf"^(%(R|W|RW))?~{_PATTERN}$")
_CHANNEL_RULE_RE: Final = re.compile(rf"^&{_PATTERN}$")
#: Names per ``ACL DELUSER`` in revoke_many: one command deletes this many users, keeping
#: each command (and the time it holds the target's thread) bounded.
DELUSER_CHUNK: Final = 500
EXPIRY_NOTE: Final = (
    "Redis ACL users have no expiry of their own: grantbot deletes this one at {at}"
)


class RedisACLSettings(ProviderSettings):
    """Resource-level settings: the admin ``url`` and what the requester is told to use."""

    type: Literal["redis_acl"] = "redis_acl"
    #: Admin connection, ``redis://user:password@host:port/0`` (usually ``${VAR}``).
    url: SecretStr
    #: Shown to the requester; default: taken from ``url``.
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    timeout_s: float = Field(default=5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if not has_reference(raw) and urlsplit(raw).scheme not in _URL_SCHEMES:
            raise ValueError("must be a redis:// or rediss:// URL")
        return v


def _rules(value: str | list[str]) -> list[str]:
    """A space-separated string or a list of rules, as a flat list."""
    items = value.split() if isinstance(value, str) else value
    return [rule for item in items for rule in item.split()]


def _validated(
    value: str | list[str], pattern: re.Pattern[str], what: str, *, lower: bool = False
) -> list[str]:
    rules = _rules(value)
    out: list[str] = []
    for rule in rules:
        rule = rule.lower() if lower else rule
        if not pattern.match(rule):
            raise ValueError(f"{rule!r} is not {what}")
        out.append(rule)
    return out


#: Each role setting's rule pattern, how an error names a rule of it, and whether it is
#: lower-cased first (command names are case-insensitive in Redis).
_RULE_KINDS: Final[dict[str, tuple[re.Pattern[str], str, bool]]] = {
    "commands": (_COMMAND_RULE_RE, "a command rule (+@category, -command, +cmd|sub)", True),
    "keys": (_KEY_RULE_RE, "a key rule (~pattern, %R~pattern, %W~, %RW~)", False),
    "channels": (_CHANNEL_RULE_RE, "a channel rule (&pattern)", False),
}


class RedisACLRoleSettings(ProviderSettings):
    """Role-level settings. Each may be a space-separated string or a list.

    ``commands``: ``+@read``, ``-@dangerous``, ``+get``, ``+config|get``...;
    ``keys``: ``~cache:*``, ``%R~logs:*`` (Redis 7 read/write selectors);
    ``channels``: ``&events:*`` (pub/sub). Password, on/off and reset rules are refused:
    only grantbot sets those.
    """

    commands: list[str] = Field(min_length=1)
    keys: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)

    @field_validator("commands", "keys", "channels", mode="before")
    @classmethod
    def _rule_list(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, str | list):
            return v  # pydantic's own type error
        pattern, what, lower = _RULE_KINDS[str(info.field_name)]
        return _validated(v, pattern, what, lower=lower)

    def acl_rules(self) -> list[str]:
        return [*self.keys, *self.channels, *self.commands]


def _flags(getuser_reply: Any) -> list[str]:
    """The ``flags`` of an ``ACL GETUSER`` reply (a flat key/value list in RESP2)."""
    if isinstance(getuser_reply, dict):
        return list(getuser_reply.get("flags", []))
    items = list(getuser_reply)
    pairs = dict(zip(items[::2], items[1::2], strict=True))
    return list(pairs.get("flags", []))


@asynccontextmanager
async def _translated(action: str) -> AsyncIterator[None]:
    """redis-py errors become TargetUnavailable (unreachable) or ProviderError (refused)."""
    async with target_errors(
        "redis_acl",
        action,
        unreachable=(redis_errors.ConnectionError, redis_errors.TimeoutError, OSError),
        refused=(redis_errors.RedisError,),
    ):
        try:
            yield
        # Before "unreachable": redis-py's AuthenticationError is a ConnectionError.
        except (redis_errors.AuthenticationError, redis_errors.AuthorizationError) as e:
            raise ProviderError(f"redis_acl: {action} failed: admin login refused: {e}") from e


class RedisACLProvider:
    """One ACL user per grant; see the module docstring for the full contract."""

    type: ClassVar[str] = "redis_acl"

    def __init__(self, settings: RedisACLSettings) -> None:
        self.settings = settings
        parts = urlsplit(settings.url.get_secret_value())
        self.scheme = parts.scheme or "redis"
        self.host = settings.host or parts.hostname or "localhost"
        self.port = settings.port or parts.port or DEFAULT_PORT
        self._client: aioredis.Redis | None = None

    @property
    def client(self) -> aioredis.Redis:
        """The admin client, created on first use (its pool reconnects after an outage)."""
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self.settings.url.get_secret_value(),
                decode_responses=True,
                socket_timeout=self.settings.timeout_s,
                socket_connect_timeout=self.settings.timeout_s,
            )
        return self._client

    async def _cmd(self, *args: Any) -> Any:
        # Raw commands: ACL replies are parsed here, the same on every redis-py version.
        return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def issue(self, ctx: GrantContext, *, now: float) -> Credential:
        ensure_not_expired(ctx, now=now)
        name = login_name(ctx.grant_id)
        rules = parse_role_settings(RedisACLRoleSettings, ctx).acl_rules()
        password = new_password()
        async with _translated("issue"):
            existed = await self._cmd("ACL", "GETUSER", name) is not None
            await self._cmd("ACL", "SETUSER", name, "reset", "on", f">{password}", *rules)
        log.info(
            "redis_acl: %s user %s for grant %s",
            "re-issued" if existed else "issued",
            name,
            ctx.grant_id,
        )
        return self._credential(name, password, ctx.expires_at)

    def _credential(self, name: str, password: str, expires_at: float) -> Credential:
        return login_credential(
            name,
            password,
            expires_at=expires_at,
            where=[("host", self.host), ("port", str(self.port))],
            url_label="url",
            url=f"{self.scheme}://{name}:{quote(password, safe='')}@{self.host}:{self.port}",
            expiry_note=EXPIRY_NOTE,
        )

    async def revoke(self, ctx: GrantContext) -> None:
        name = login_name(ctx.grant_id)
        async with _translated("revoke"):
            if await self._cmd("ACL", "GETUSER", name) is None:
                log.info("redis_acl: user %s already gone (grant %s)", name, ctx.grant_id)
                return
            # Off first: no new AUTH while its connections are being killed.
            await self._cmd("ACL", "SETUSER", name, "off", "resetpass")
            try:
                killed = await self._cmd("CLIENT", "KILL", "USER", name)
            except redis_errors.ResponseError as e:
                if "no such user" not in str(e).lower():  # deleted meanwhile: nothing to kill
                    raise
                killed = 0
            await self._cmd("ACL", "DELUSER", name)
        log.info(
            "redis_acl: revoked user %s for grant %s (%s connection(s) killed)",
            name,
            ctx.grant_id,
            killed,
        )

    async def revoke_many(self, contexts: Sequence[GrantContext]) -> Mapping[str, Exception]:
        """Revoke every grant in ``contexts`` in one round trip (see BulkRevoker).

        ``ACL DELUSER`` takes many names, skips those already gone (idempotent) and closes the
        deleted users' connections itself; the grants' names are sent in chunks of
        ``DELUSER_CHUNK`` in one pipeline. Each grant has its own user, so other grants of
        the same person are untouched. Raises TargetUnavailable / ProviderError when the
        target cannot be reached or refuses: then every grant given counts as failed (and,
        since deleting is idempotent, a retry of them all is safe).
        """
        names = list(dict.fromkeys(login_name(ctx.grant_id) for ctx in contexts))
        if not names:
            return {}
        async with _translated("revoke"):
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(names), DELUSER_CHUNK):
                pipe.execute_command("ACL", "DELUSER", *names[start : start + DELUSER_CHUNK])
            deleted = sum(int(n) for n in await pipe.execute())
        log.info(
            "redis_acl: revoked %d grant(s): %d user(s) deleted, the rest already gone",
            len(names),
            deleted,
        )
        return {}

    async def check(self, ctx: GrantContext) -> bool:
        name = login_name(ctx.grant_id)
        async with _translated("check"):
            reply = await self._cmd("ACL", "GETUSER", name)
        return reply is not None and "on" in _flags(reply)

    async def live_grant_ids(self) -> set[str]:
        """Grant ids of every grantbot ACL user that exists."""
        async with _translated("list users"):
            names = await self._cmd("ACL", "USERS")
        ids = (grant_id_from_login(str(n)) for n in names)
        return {i for i in ids if i is not None}

    async def health(self) -> None:
        async with _translated("health check"):
            await self._cmd("PING")

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
