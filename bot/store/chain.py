"""The audit chain's links, and this process's one way of adding to it.

An entry's hash is SHA-256 of ``prev:seq:SHA-256(body)``; the head key holds ``"seq hash"``
of the newest entry. The hashes are computed here, with hashlib, never in Redis (SHA-256 in
Lua costs ~0.5 ms of Redis's one thread per entry). Every script that appends is given the
head the hashes were computed from and writes nothing unless that is still the head
(``lua/audit_append.lua``), so the chain stays gapless whoever writes.

:class:`AuditChain` serialises this process's appends (an asyncio lock) and remembers the
head its last append left, so they never refuse each other: only another process (a replica,
the CLI) moving the head makes an append go round again, chained onto the head the refusal
names.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from bot.errors import ConcurrencyError

GENESIS: Final = "0" * 64
#: A script's answer when the head it was given is no longer the head: ``["head", current]``.
HEAD_MOVED: Final = "head"
#: Appends refused for a moved head before giving up (each refusal means another process
#: appended meanwhile, so the chain as a whole kept moving).
MAX_CHAIN_ATTEMPTS: Final = 64
#: After this many refusals in a row, wait a little (jittered) before the next try, so two
#: processes appending flat out stop meeting in the same moment.
_BACKOFF_AFTER: Final = 4
_BACKOFF_MAX_S: Final = 0.005

#: One script call appending entries after a head: ``attempt(head, hashes)`` gets the head
#: the hashes extend ("" for an empty chain) and returns the script's reply.
Attempt = Callable[[str, list[str]], Awaitable[list[Any]]]


def chain_hash(prev: str, seq: int, body: str) -> str:
    """The hash of entry ``seq`` with ``body`` after the entry whose hash is ``prev``."""
    body_digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return hashlib.sha256(f"{prev}:{seq}:{body_digest}".encode()).hexdigest()


def parse_head(head: str) -> tuple[int, str]:
    """``(seq, hash)`` of the entry a head value names; ``(0, GENESIS)`` for ""."""
    if not head:
        return 0, GENESIS
    seq, _, digest = head.partition(" ")
    return int(seq), digest


def link(head: str, bodies: Sequence[str]) -> tuple[list[str], str]:
    """The hashes of ``bodies`` appended in order after ``head``, and the head they leave."""
    seq, prev = parse_head(head)
    hashes: list[str] = []
    for body in bodies:
        seq += 1
        prev = chain_hash(prev, seq, body)
        hashes.append(prev)
    return hashes, f"{seq} {prev}"


class AuditChain:
    """This process's appends to one audit chain, one at a time. See the module docstring."""

    def __init__(self) -> None:
        self._head: str | None = None  # what our last append left; None: not known yet
        self._lock: asyncio.Lock | None = None

    async def extend(self, bodies: Sequence[str], attempt: Attempt) -> list[Any]:
        """Hash ``bodies`` onto the head and run ``attempt`` (one script call that writes them
        with their state change, atomically), again onto the new head while it answers
        :data:`HEAD_MOVED`. Returns its reply: ``["ok", ...]``, or the script's own refusal
        (a version conflict, say), after which the chain is as it was. Raises
        ConcurrencyError after :data:`MAX_CHAIN_ATTEMPTS` moved heads."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            head = self._head or ""  # not known: a refusal names the real one
            for attempt_no in range(MAX_CHAIN_ATTEMPTS):
                hashes, after = link(head, bodies)
                reply = await attempt(head, hashes)
                if reply[0] != HEAD_MOVED:
                    if reply[0] == "ok":
                        self._head = after
                    return reply
                head = self._head = str(reply[1])
                if attempt_no >= _BACKOFF_AFTER:
                    await asyncio.sleep(_BACKOFF_MAX_S * random.random())
        raise ConcurrencyError("the audit log is changing too fast to append to; try again")
