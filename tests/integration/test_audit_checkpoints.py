"""Signed checkpoints anchor the audit chain: a wholesale rewrite, a truncation and a deleted
checkpoint are each caught by `grantbot audit verify --public-key`, whose exit codes say
intact (0), tampered (1) or unreadable (3)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.audit.checkpointer import Checkpointer
from bot.audit.signing import generate, key_id, load_public_key, load_signing_key, public_text
from bot.audit.verify import verify_with_checkpoints
from bot.devtools.redis_server import free_port
from bot.domain.model import Actor, ActorKind, Event
from bot.errors import AuditChainError, ConfigError
from bot.store.chain import GENESIS, chain_hash
from bot.store.grants import GrantStore
from tests.factories import NOW, POLICY_V, make_grant
from tests.integration.support import grantbot

HOUR = 3600.0


async def _history(store: GrantStore, n: int) -> None:
    """n requests, each approved and issued: 3n chained entries."""
    for i in range(n):
        g = await store.create(
            make_grant(),
            actor=Actor(kind=ActorKind.REQUESTER, id="U0REQUEST"),
            policy_version=POLICY_V,
        )
        await store.transition(
            g.id,
            Event.APPROVE,
            actor=Actor(kind=ActorKind.APPROVER, id=f"U0A{i}"),
            now=NOW + i,
            policy_version=POLICY_V,
        )
        await store.transition(
            g.id, Event.ISSUE, actor=Actor.system(), now=NOW + i, policy_version=POLICY_V
        )


def _checkpointer(store: GrantStore, pem: bytes) -> Checkpointer:
    return Checkpointer(
        store.audit,
        store.checkpoints,
        key=load_signing_key(pem.decode()),
        log_name=store.keys.prefix,
        clock=time.time,
    )


async def _verify(store: GrantStore, *pems: bytes, now: float | None = None) -> object:
    keys = {}
    for pem in pems:
        public = load_signing_key(pem.decode()).public
        keys[key_id(public)] = public
    return await verify_with_checkpoints(
        store.audit,
        store.checkpoints,
        public_keys=keys,
        log=store.keys.prefix,
        now=now if now is not None else time.time(),
        max_uncovered_s=15 * 60,
    )


async def _rewrite_wholesale(
    store: GrantStore, redis_client: aioredis.Redis, *, old: str, new: str
) -> None:
    """What an attacker with write access to Redis does: alter a body and recompute every
    hash after it, and the head, so the chain alone verifies."""
    r: aioredis.Redis = redis_client
    raw = await r.xrange(store.keys.audit)
    await r.delete(store.keys.audit)
    prev = GENESIS
    for stream_id, fields in raw:
        body = fields["body"].replace(old, new)
        digest = chain_hash(prev, int(fields["seq"]), body)
        await r.xadd(
            store.keys.audit,
            {"seq": fields["seq"], "prev": prev, "body": body, "hash": digest},
            id=stream_id,
        )
        prev = digest
    await r.set(store.keys.audit_head, f"{len(raw)} {prev}")


@pytest.fixture
def pem() -> bytes:
    return generate()[0]


async def test_checkpointed_chain_verifies_and_rewrite_is_caught(
    store: GrantStore, redis_client: aioredis.Redis, pem: bytes
) -> None:
    """A chain recomputed wholesale with an altered approver verifies on its own, but the
    signed checkpoint names the hash the chain had: verify reports the rewrite."""
    await _history(store, 3)
    cp = await _checkpointer(store, pem).write()
    assert cp is not None and cp.seq == 9 and cp.n == 1
    await _history(store, 1)
    assert await _checkpointer(store, pem).write() is not None
    report = await _verify(store, pem)
    assert report.checkpoints.count == 2 and report.checkpoints.uncovered == 0  # type: ignore[attr-defined]

    await _rewrite_wholesale(store, redis_client, old="U0A1", new="U0EVIL")
    await store.audit.verify()  # the chain alone is consistent again
    with pytest.raises(AuditChainError, match=r"checkpoint 1 .* says entry seq 9 has hash"):
        await _verify(store, pem)


async def test_truncated_chain_is_caught(
    store: GrantStore, redis_client: aioredis.Redis, pem: bytes
) -> None:
    """Deleting the newest entries and setting the head to match leaves a chain that
    verifies alone; the checkpoint that vouched for the later seq catches it."""
    await _history(store, 3)
    await _checkpointer(store, pem).write()
    raw = await redis_client.xrange(store.keys.audit)
    for stream_id, _ in raw[6:]:
        await redis_client.xdel(store.keys.audit, stream_id)
    await redis_client.set(store.keys.audit_head, f"6 {raw[5][1]['hash']}")
    await store.audit.verify()
    with pytest.raises(AuditChainError, match="vouches for seq 9, but the chain ends at seq 6"):
        await _verify(store, pem)


async def test_deleted_checkpoint_is_caught(
    store: GrantStore, redis_client: aioredis.Redis, pem: bytes
) -> None:
    """Deleting a checkpoint in the middle breaks the numbering and links of the next one."""
    writer = _checkpointer(store, pem)
    for _ in range(3):
        await _history(store, 1)
        await writer.write()
    rows = await redis_client.xrange(store.keys.audit_checkpoints)
    assert len(rows) == 3
    await redis_client.xdel(store.keys.audit_checkpoints, rows[1][0])
    with pytest.raises(AuditChainError, match="expected checkpoint 2 linked to the one before"):
        await _verify(store, pem)


async def test_deleted_newest_checkpoint_leaves_entries_uncovered(
    store: GrantStore, redis_client: aioredis.Redis, pem: bytes
) -> None:
    """Deleting the newest checkpoint (to rewrite what it covered) leaves entries no
    checkpoint covers; once they are older than the allowance, verify calls it tampering."""
    writer = _checkpointer(store, pem)
    await _history(store, 1)
    await writer.write()
    await _history(store, 1)
    await writer.write()
    newest = (await redis_client.xrevrange(store.keys.audit_checkpoints, count=1))[0][0]
    await redis_client.xdel(store.keys.audit_checkpoints, newest)
    report = await _verify(store, pem)  # within the allowance: they may await the next one
    assert report.checkpoints.uncovered == 3  # type: ignore[attr-defined]
    with pytest.raises(AuditChainError, match=r"from seq 4 .* covered by no checkpoint"):
        await _verify(store, pem, now=time.time() + HOUR)


async def test_rotated_keys_each_check_their_own_checkpoints(store: GrantStore) -> None:
    """After a rotation verify takes both public keys; without the old one it names the
    key id it does not know (a forged checkpoint looks the same)."""
    old_pem, new_pem = generate()[0], generate()[0]
    await _history(store, 1)
    await _checkpointer(store, old_pem).write()
    await _history(store, 1)
    await _checkpointer(store, new_pem).write()
    report = await _verify(store, old_pem, new_pem)
    assert report.checkpoints.count == 2  # type: ignore[attr-defined]
    old_id = load_signing_key(old_pem.decode()).key_id
    with pytest.raises(AuditChainError, match=f"signed by key {old_id}, which is none"):
        await _verify(store, new_pem)


async def test_altered_checkpoint_signature_fails(
    store: GrantStore, redis_client: aioredis.Redis, pem: bytes
) -> None:
    """A checkpoint whose payload was edited (to match a rewritten chain) fails its
    signature."""
    await _history(store, 1)
    await _checkpointer(store, pem).write()
    ((stream_id, fields),) = await redis_client.xrange(store.keys.audit_checkpoints)
    await redis_client.delete(store.keys.audit_checkpoints)
    forged = fields["payload"].replace('"seq":3', '"seq":2')
    await redis_client.xadd(
        store.keys.audit_checkpoints, {"payload": forged, "sig": fields["sig"]}, id=stream_id
    )
    with pytest.raises(AuditChainError, match="signature does not match"):
        await _verify(store, pem)


async def test_checkpointer_writes_nothing_when_the_head_has_not_moved(
    store: GrantStore, redis_client: aioredis.Redis, pem: bytes
) -> None:
    """A second checkpoint of an unchanged head is not written (the stream stays small)."""
    await _history(store, 1)
    writer = _checkpointer(store, pem)
    assert await writer.write() is not None
    assert await writer.write() is None
    assert await redis_client.xlen(store.keys.audit_checkpoints) == 1


def test_key_forms_and_bad_keys(tmp_path: Path) -> None:
    """Keys load from PEM text, a file or base64; a bad one is a ConfigError that never
    echoes key material."""
    pem, key = generate()
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    assert load_signing_key(str(path)).key_id == key.key_id
    assert load_signing_key(pem.decode()).key_id == key.key_id
    public = public_text(key.public)
    assert key_id(load_public_key(public)) == key.key_id
    with pytest.raises(ConfigError, match="GRANTBOT_AUDIT_SIGNING_KEY") as err:
        load_signing_key("not-a-key-but-a-secret-value")
    assert "secret-value" not in str(err.value)
    with pytest.raises(ConfigError, match="--public-key"):
        load_public_key("AAAA")


async def test_cli_keygen_verify_and_exit_codes(
    store: GrantStore, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """keygen writes a 0600 key and prints the public half; `audit checkpoint` signs the
    head; verify exits 0 intact, 1 after a rewrite, 3 with Redis down, 2 for a bad key."""
    key_file = tmp_path / "audit.key"
    made = grantbot("audit", "keygen", "--out", str(key_file))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    public = next(
        line.split()[-1] for line in made.stdout.splitlines() if line.startswith("public key")
    )
    assert grantbot("audit", "keygen", "--out", str(key_file)).returncode == 1  # no overwrite

    env = {**cli_env, "GRANTBOT_AUDIT_SIGNING_KEY": str(key_file)}
    await _history(store, 1)
    done = grantbot("audit", "checkpoint", env=env)
    assert done.returncode == 0, done.stderr
    ok = grantbot("audit", "verify", "--public-key", public, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "checkpoints intact: 1" in ok.stdout

    bad = grantbot("audit", "verify", "--public-key", "AAAA", env=env)
    assert bad.returncode == 2 and "--public-key" in bad.stderr

    down = {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    unreadable = grantbot("audit", "verify", "--public-key", public, env=down)
    assert unreadable.returncode == 3, unreadable.stderr
    assert "could not read the audit log" in unreadable.stderr
    assert "Traceback" not in unreadable.stderr


async def test_cli_verify_exits_1_on_a_rewrite(
    store: GrantStore, redis_client: aioredis.Redis, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A wholesale rewrite after a checkpoint: exit 1 and a line naming the checkpoint."""
    pem, key = generate()
    await _history(store, 2)
    await _checkpointer(store, pem).write()
    await _rewrite_wholesale(store, redis_client, old="U0A0", new="U0EVIL")
    plain = grantbot("audit", "verify", env=cli_env)
    assert plain.returncode == 0  # the chain alone cannot tell
    done = grantbot("audit", "verify", "--public-key", public_text(key.public), env=cli_env)
    assert done.returncode == 1
    assert "audit chain TAMPERED: checkpoint 1" in done.stderr
