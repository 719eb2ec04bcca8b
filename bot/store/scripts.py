"""The Lua scripts, assembled from bot/store/lua and registered with a client."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript


@cache
def _lua(name: str) -> str:
    return resources.files("bot.store").joinpath("lua", name).read_text(encoding="utf-8")


def _with_prelude(name: str) -> str:
    # Redis scripts cannot share functions, so each script carries the helpers it calls
    # (the audit chain, the index updates).
    return "\n".join(
        (_lua("sha256.lua"), _lua("audit_append.lua"), _lua("index_ops.lua"), _lua(name))
    )


def lua_source(name: str) -> str:
    """A script that needs none of the prelude (it touches no grant and no chain)."""
    return _lua(name)


def script_source(name: str) -> str:
    """Full source of a script (``commit.lua`` or ``append.lua``) with its prelude."""
    return _with_prelude(name)


def plain_source(name: str) -> str:
    """Source of a script that needs no prelude (it writes no grant and no audit entry)."""
    return _lua(name)


@dataclass(frozen=True, slots=True)
class Scripts:
    commit: AsyncScript
    append: AsyncScript

    @classmethod
    def register(cls, client: aioredis.Redis) -> Scripts:
        return cls(
            commit=client.register_script(_with_prelude("commit.lua")),
            append=client.register_script(_with_prelude("append.lua")),
        )
