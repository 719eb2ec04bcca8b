"""Every Lua script grantbot runs, read from bot/store/lua and registered with a client.

A script is named by its file. Redis scripts cannot share functions, so each script that
appends to the audit chain carries the helpers it calls (``audit_append.lua`` and
``index_ops.lua``) before its own text; the others run as written. Nothing outside
bot/store holds Lua: a module registers a script here by name.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Final

import redis as redis_sync
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript, Script

#: The helpers every appending script carries, in this order.
PRELUDE: Final = ("audit_append.lua", "index_ops.lua")
#: Scripts that append to the audit chain (they carry :data:`PRELUDE`).
APPENDING: Final = frozenset({"commit.lua", "commit_many.lua", "append.lua", "ssh_key_set.lua"})


@cache
def _lua(name: str) -> str:
    return resources.files("bot.store").joinpath("lua", name).read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """The full source of the script in ``lua/<name>``: with the prelude when it appends."""
    if name in PRELUDE:
        raise ValueError(f"{name} is a prelude, not a script")
    if name in APPENDING:
        return "\n".join((*(_lua(p) for p in PRELUDE), _lua(name)))
    return _lua(name)


def script_names() -> list[str]:
    """Every script in bot/store/lua (the preludes excluded), sorted."""
    files = resources.files("bot.store").joinpath("lua").iterdir()
    return sorted(f.name for f in files if f.name.endswith(".lua") and f.name not in PRELUDE)


def register(client: aioredis.Redis, name: str) -> AsyncScript:
    """``lua/<name>`` registered with an asyncio client (EVALSHA, loaded on first use)."""
    return client.register_script(source(name))


def register_blocking(client: redis_sync.Redis, name: str) -> Script:
    """``lua/<name>`` registered with a blocking client (the scheduler thread's)."""
    return client.register_script(source(name))
