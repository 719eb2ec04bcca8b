"""Redis going away under a running bot: Slack users are told to try again, nothing that was
stored is lost, and the bot works again when Redis is back. Redis is a real redis-server
this test starts and stops; Slack is the emulator, driven by signed requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.devtools.redis_server import RedisServer
from bot.domain.model import Status
from bot.slack.blocks.messages import STORE_DOWN_TEXT
from tests.integration.slack_harness import ALICE, running_bot


@pytest.mark.slow
async def test_a_request_while_redis_is_down_is_told_to_try_again_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    """A request filed before the outage survives it; one sent during it acks at once and
    gets "try again shortly" ephemerally, storing nothing; after Redis restarts on the same
    data the requester can ask again and both requests are there."""
    server = RedisServer(data_dir=tmp_path / "redis", appendonly=True).start()
    try:
        async with running_bot(redis_url=server.url, prefix="outage") as slack:
            await slack.command(ALICE, "request sandbox play 20m before the outage")
            [before] = await slack.grants_of(ALICE)
            assert before.status is Status.PENDING

            server.stop(keep_data=True)  # SIGTERM: the AOF is flushed, as in a restart
            resp = await slack.command(ALICE, "request sandbox play 20m during the outage")
            assert resp.status == 200 and resp.latency_s < 3
            assert STORE_DOWN_TEXT in slack.last_ephemeral(ALICE)

            server.start()
            grants = await slack.grants_of(ALICE)
            assert [g.id for g in grants] == [before.id]  # kept; the refused one never stored
            await slack.command(ALICE, "request sandbox play 20m after the outage")
            after = await slack.grants_of(ALICE)
            assert len(after) == 2 and all(g.status is Status.PENDING for g in after)
            assert {g.reason for g in after} == {"before the outage", "after the outage"}
    finally:
        server.stop()


@pytest.mark.slow
async def test_an_ssh_key_added_while_redis_is_down_is_told_to_try_again(tmp_path: Path) -> None:
    """``/access ssh-key add`` during an outage gets "try again shortly" (not "unexpected
    error") and stores nothing; once Redis is back the key and its SSH_KEY_SET audit entry
    are stored together."""
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b"
    server = RedisServer(data_dir=tmp_path / "redis", appendonly=True).start()
    try:
        async with running_bot(redis_url=server.url, prefix="outage") as slack:
            server.stop(keep_data=True)
            resp = await slack.command(ALICE, f"ssh-key add {key}")
            assert resp.status == 200
            assert STORE_DOWN_TEXT in slack.last_ephemeral(ALICE)

            server.start()
            assert await slack.bot.service.ssh_key(ALICE) is None
            await slack.command(ALICE, f"ssh-key add {key}")
            assert "registered" in slack.last_ephemeral(ALICE)
            assert await slack.bot.service.ssh_key(ALICE) == key
            entries = [e.data async for e in slack.bot.store.audit.entries()]
            assert [e["details"] for e in entries if e["event"] == "SSH_KEY_SET"] == [
                {"key_type": "ssh-ed25519"}
            ]
            await slack.bot.store.audit.verify()
    finally:
        server.stop()
