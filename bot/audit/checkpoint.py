"""What a signed audit checkpoint says, and how it is encoded. Pure.

A checkpoint binds the chain's head at one moment: ``seq`` and ``hash`` of the newest entry,
``at`` (when it was taken), ``log`` (the Redis key prefix, so a checkpoint of one log cannot
vouch for another), ``key_id`` (which key signed it), ``n`` (1, 2, 3, ...) and ``prev``
(the link of checkpoint ``n - 1``: SHA-256 of its payload and signature; 64 zeros for the
first). The payload is canonical JSON; the signature is Ed25519 over its UTF-8 bytes.
A rewritten chain no longer has the signed hash at ``seq``; a truncated one ends before
``seq``; a deleted checkpoint leaves a gap in ``n`` and a broken ``prev``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Final

from bot.errors import AuditChainError
from bot.store.audit import canonical_json
from bot.store.chain import GENESIS

VERSION: Final = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    n: int
    seq: int
    hash: str
    at: float
    log: str
    key_id: str
    prev: str

    def payload(self) -> str:
        """The canonical text that is signed."""
        return canonical_json({"v": VERSION, **asdict(self)})


def link(payload: str, sig: str) -> str:
    """What the next checkpoint's ``prev`` must be."""
    return hashlib.sha256(f"{payload}.{sig}".encode()).hexdigest()


FIRST_PREV: Final = GENESIS


def parse(payload: str, *, where: str) -> Checkpoint:
    """The checkpoint a payload describes; AuditChainError (naming ``where``) if malformed."""
    try:
        data: dict[str, Any] = json.loads(payload)
        if data.get("v") != VERSION:
            raise ValueError(f"unknown version {data.get('v')!r}")
        return Checkpoint(
            n=int(data["n"]),
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            at=float(data["at"]),
            log=str(data["log"]),
            key_id=str(data["key_id"]),
            prev=str(data["prev"]),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise AuditChainError(f"{where}: malformed ({e}); altered") from e
