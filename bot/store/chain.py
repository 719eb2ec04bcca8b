"""The audit chain's links, and this process's one way of adding to it.

An entry's hash is SHA-256 of ``prev:seq:SHA-256(body)``; the head key holds ``"seq hash"``
of the newest entry. The hashes are computed here, with hashlib, never in Redis (SHA-256 in
Lua costs ~0.5 ms of Redis's one thread per entry). Every script that appends is given the
head the hashes were computed from and writes nothing unless that is still the head
(``lua/audit_append.lua``), so the chain stays gapless whoever writes.

:class:`AuditChain` orders this process's appends and remembers the head its last append
left, so they never refuse each other: only another process (a replica, the CLI) moving the
head makes an append go round again, chained onto the head the refusal names. The appends
waiting at one moment go to Redis together, as one pipeline (a group commit): each is hashed
onto the head the one before it will leave, and Redis runs them in that order. Taking turns
one round trip each had made fifty people's appends wait for each other's round trips (with
Redis busy during 10,000 expiries, ~0.3 s per append of a click); now they cost about one.
An append that Redis refuses for its own reason (a grant's version moved) writes nothing, so
the ones queued behind it in the same pipeline find the head moved and go round once more.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

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

#: Appends sent to Redis in one pipeline at most (a bulk commit of 500 grants is one).
MAX_ROUND: Final = 128


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One appending script's call (its KEYS and ARGV), made by :class:`AuditChain`."""

    script: AsyncScript
    keys: Sequence[Any]
    args: Sequence[Any]


#: What appends entries after a head: ``attempt(head, hashes)`` gets the head the hashes
#: extend ("" for an empty chain) and returns the script call that writes them with their
#: state change, atomically. Its reply starts with ``"ok"``, or :data:`HEAD_MOVED` and the
#: current head, or the script's own refusal (nothing written).
Attempt = Callable[[str, list[str]], ScriptCall]


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


@dataclass(slots=True)
class _Append:
    """One caller's entries, waiting for their reply."""

    bodies: Sequence[str]
    attempt: Attempt
    reply: asyncio.Future[list[Any]]
    moved: int = 0  # refusals because another process had moved the head
    sent: str = ""  # the head its latest try was chained onto


class AuditChain:
    """This process's appends to one audit chain, in order, those waiting together sent as
    one pipeline. See the module docstring."""

    def __init__(self, client: aioredis.Redis, *, max_round: int = MAX_ROUND) -> None:
        self._client = client
        self._max_round = max_round
        self._head: str | None = None  # what our last append left; None: not known yet
        self._queue: deque[_Append] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._sender_loop: asyncio.AbstractEventLoop | None = None

    async def extend(self, bodies: Sequence[str], attempt: Attempt) -> list[Any]:
        """Hash ``bodies`` onto the head and make ``attempt``'s script call, again onto the new
        head while it answers :data:`HEAD_MOVED`. Returns its reply: ``["ok", ...]``, or the
        script's own refusal (a version conflict, say), after which the chain is as it was.
        Raises ConcurrencyError after :data:`MAX_CHAIN_ATTEMPTS` heads moved by another
        process, and what Redis raised when the pipeline carrying it failed."""
        loop = asyncio.get_running_loop()
        item = _Append(list(bodies), attempt, loop.create_future())
        self._queue.append(item)
        if self._sender is None or self._sender.done() or self._sender_loop is not loop:
            self._sender_loop = loop
            self._sender = loop.create_task(self._send_all(), name="audit-chain")
        return await item.reply

    async def _send_all(self) -> None:
        """Rounds of the waiting appends until none is left."""
        while self._queue:
            batch: list[_Append] = []
            while self._queue and len(batch) < self._max_round:
                item = self._queue.popleft()
                if not item.reply.done():  # its caller gave up (cancelled) before it was sent
                    batch.append(item)
            if not batch:
                continue
            try:
                again = await self._round(batch)
            except asyncio.CancelledError:
                for item in (*batch, *self._queue):
                    item.reply.cancel()
                self._queue.clear()
                raise
            except Exception as e:  # Redis failed: each append of the round fails with it
                for item in batch:
                    if not item.reply.done():
                        item.reply.set_exception(e)
                continue
            self._queue.extendleft(reversed(again))
            if any(item.moved >= _BACKOFF_AFTER for item in again):
                # Two processes appending flat out: stop meeting in the same moment.
                await asyncio.sleep(_BACKOFF_MAX_S * random.random())

    async def _round(self, batch: list[_Append]) -> list[_Append]:
        """One pipeline of ``batch``, each chained onto the head the one before leaves;
        settles each reply and returns the appends that go round again, in order."""
        predicted = self._head or ""  # not known: a refusal names the real one
        pipe = self._client.pipeline(transaction=False)
        calls: list[tuple[_Append, ScriptCall, str]] = []
        for item in batch:
            hashes, after = link(predicted, item.bodies)
            call = item.attempt(predicted, hashes)
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            item.sent = predicted
            calls.append((item, call, after))
            predicted = after
        replies = await pipe.execute(raise_on_error=False)
        known = self._head or ""  # the head as the replies tell it, in order
        again: list[_Append] = []
        loaded: set[str] = set()
        for (item, call, after), reply in zip(calls, replies, strict=True):
            if isinstance(reply, NoScriptError):  # a new or flushed Redis: load, go again
                if call.script.sha not in loaded:
                    loaded.add(call.script.sha)
                    await self._client.script_load(call.script.script)
                again.append(item)
            elif isinstance(reply, Exception):  # the script failed: that caller's error
                _settle(item, error=reply)
            elif reply[0] == HEAD_MOVED:
                if item.sent == known:  # not ours: another process appended
                    item.moved += 1
                known = str(reply[1])
                if item.moved >= MAX_CHAIN_ATTEMPTS:
                    _settle(item, error=ConcurrencyError(_TOO_FAST))
                else:
                    again.append(item)
            else:
                if reply[0] == "ok":
                    known = after
                _settle(item, reply=reply)
        self._head = known
        return again


_TOO_FAST: Final = "the audit log is changing too fast to append to; try again"


def _settle(
    item: _Append, *, reply: list[Any] | None = None, error: Exception | None = None
) -> None:
    if item.reply.done():  # cancelled while in flight: what it wrote stands, nobody waits
        return
    if error is not None:
        item.reply.set_exception(error)
    else:
        item.reply.set_result(reply or [])
