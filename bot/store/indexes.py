"""Which index sets a grant's change moves it between (pure), in the form the commit scripts
apply (``lua/index_ops.lua``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from bot.domain.model import TERMINAL, Grant, Status
from bot.store.keys import Keys

#: States whose grants sit in the expiries index (a credential may exist and must end).
EXPIRING: Final = frozenset({Status.ACTIVE, Status.REVOKE_FAILED})
#: commit.lua's fixed keys (grant, audit stream, audit head) come before the index keys.
_COMMIT_FIXED_KEYS: Final = 3

_COMPACT: Final = json.JSONEncoder(separators=(",", ":"))  # reused: see audit._CANONICAL


@dataclass(frozen=True, slots=True)
class IndexPlan:
    """Keys beyond commit.lua's first three and the ops referencing them (1-based over all
    KEYS)."""

    keys: list[str]
    ops: list[list[Any]]


def plan_indexes(keys: Keys, old: Grant | None, new: Grant) -> IndexPlan:
    """The index updates that take ``old`` (None when creating) to ``new``. Pure."""
    plan_keys: list[str] = []
    positions: dict[str, int] = {}

    def key_index(name: str) -> int:
        pos = positions.get(name)
        if pos is None:
            plan_keys.append(name)
            pos = positions[name] = _COMMIT_FIXED_KEYS + len(plan_keys)
        return pos

    return IndexPlan(keys=plan_keys, ops=index_ops(keys, old, new, key_index))


def index_ops(
    keys: Keys, old: Grant | None, new: Grant, key_index: Callable[[str], int]
) -> list[list[Any]]:
    """The index ops taking ``old`` to ``new``; ``key_index`` numbers each key they touch
    (so the bulk path can number keys over a whole batch without renumbering)."""
    ops: list[list[Any]] = []
    gid = new.id
    if old is None:
        ops.append(["zadd", key_index(keys.all_grants), new.created_at, gid])
        ops.append(["zadd", key_index(keys.user_all(new.requester)), new.created_at, gid])
    if old is None or old.status is not new.status:
        if old is not None:
            ops.append(["srem", key_index(keys.by_status(old.status)), gid])
        ops.append(["sadd", key_index(keys.by_status(new.status)), gid])
    if new.status in TERMINAL:
        ops.append(["srem", key_index(keys.user_open(new.requester)), gid])
    else:
        ops.append(["sadd", key_index(keys.user_open(new.requester)), gid])
    if new.status is Status.PENDING and new.request_expires_at is not None:
        ops.append(["zadd", key_index(keys.pending_deadlines), new.request_expires_at, gid])
    elif old is not None and old.status is Status.PENDING:
        ops.append(["zrem", key_index(keys.pending_deadlines), gid])
    if new.status in EXPIRING and new.expires_at is not None:
        ops.append(["zadd", key_index(keys.expiries), new.expires_at, gid])
    elif old is not None and old.status in EXPIRING:
        ops.append(["zrem", key_index(keys.expiries), gid])
    was_live = old is not None and old.status in EXPIRING
    if (new.status in EXPIRING) != was_live:
        delta = -1 if was_live else 1
        ops.append(["hincrby", key_index(keys.live_by_resource), new.resource, delta])
    return ops


def ops_json(items: list[list[Any]]) -> str:
    """The ops as the scripts read them (compact JSON)."""
    return _COMPACT.encode(items)
