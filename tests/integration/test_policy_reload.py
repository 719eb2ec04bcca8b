"""A running bot's policy reloads only when the new file passes, and the change is audited."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable
from pathlib import Path

import pytest

from bot.domain.model import Actor, Event, Status
from bot.policy_holder import POLICY_REJECTED, POLICY_RELOADED, PolicyHolder
from bot.store.grants import GrantStore
from tests.factories import NOW, make_grant
from tests.integration.support import ROOT, wait_for

GOOD = (ROOT / "policies.yaml").read_bytes()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_bytes(GOOD)
    return path


async def test_valid_change_takes_effect_and_is_audited(
    policy_file: Path, store: GrantStore
) -> None:
    """A valid edit becomes current and the audit records old and new versions."""
    holder = PolicyHolder.load(policy_file)
    old = holder.version
    policy_file.write_bytes(GOOD.replace(b"max_duration: 4h", b"max_duration: 3h", 1))
    assert await holder.reload(audit=store.audit, now=1.0) is True
    assert holder.version != old
    entries = [e.data async for e in store.audit.entries()]
    assert entries[-1]["event"] == POLICY_RELOADED
    assert entries[-1]["policy_version"] == holder.version
    assert entries[-1]["details"]["from"] == old


async def test_invalid_change_keeps_the_old_policy_and_says_why(
    policy_file: Path, store: GrantStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken edit is rejected: old version stays, the log names the error, audit records it."""
    holder = PolicyHolder.load(policy_file)
    old = holder.version
    policy_file.write_bytes(GOOD.replace(b"max_duration: 4h", b"max_duration: 4x", 1))
    with caplog.at_level(logging.ERROR):
        assert await holder.reload(audit=store.audit, now=1.0) is False
    assert holder.version == old
    assert '"4x" is not a duration' in caplog.text
    last = [e.data async for e in store.audit.entries()][-1]
    assert last["event"] == POLICY_REJECTED and last["policy_version"] == old


async def test_unchanged_file_is_not_a_new_version(policy_file: Path, store: GrantStore) -> None:
    """Reloading identical bytes changes nothing and audits nothing."""
    holder = PolicyHolder.load(policy_file)
    assert await holder.reload(audit=store.audit, now=1.0) is False
    assert (await store.audit.verify()).entries == 0


async def test_sighup_and_file_change_trigger_reload(policy_file: Path, store: GrantStore) -> None:
    """With triggers installed, SIGHUP reloads, and so does the file changing on disk."""
    holder = PolicyHolder.load(policy_file)
    holder.install_reload_triggers(audit=store.audit, clock=lambda: 1.0)
    try:
        v0 = holder.version
        policy_file.write_bytes(GOOD.replace(b"max_duration: 4h", b"max_duration: 3h", 1))
        holder._stamp = holder._file_stamp()  # hide the change from the watcher: SIGHUP alone
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: holder.version != v0, what="the reload on SIGHUP")
        v1 = holder.version

        policy_file.write_bytes(GOOD.replace(b"max_duration: 4h", b"max_duration: 2h", 1))
        # The watcher polls every 2 s.
        await wait_for(lambda: holder.version != v1, what="the reload on the file's change")
        assert holder.version not in (v0, v1)

        async def audited() -> list[str]:
            return [e.data["event"] async for e in store.audit.entries()]

        # The new version is in force before its audit entry is written: wait for the entry.
        await wait_for(lambda: _len_is(audited(), 2), what="both reloads audited")
        assert await audited() == [POLICY_RELOADED, POLICY_RELOADED]
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await holder.aclose()


async def test_a_change_removing_a_role_live_grants_use_is_refused(
    policy_file: Path, store: GrantStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Revoking needs the grant's rule, so a file that drops a role an ACTIVE grant holds is
    refused like an invalid one, naming the role and the grant; once that grant has ended
    the same file is accepted."""
    holder = PolicyHolder.load(policy_file)
    holder.in_use = store.live_rules
    old = holder.version
    grant = await store.create(
        make_grant(resource="sandbox", role="play", status=Status.ACTIVE, expires_at=NOW + 60),
        actor=Actor.system(),
        policy_version=old,
    )
    policy_file.write_bytes(GOOD.replace(b"      play:\n", b"      toy:\n", 1))
    with caplog.at_level(logging.ERROR):
        assert await holder.reload(audit=store.audit, now=1.0) is False
    assert holder.version == old
    assert f"removes sandbox play, which 1 live grant(s) still use ({grant.id})" in caplog.text
    last = [e.data async for e in store.audit.entries()][-1]
    assert last["event"] == POLICY_REJECTED

    await store.transition(
        grant.id, Event.REVOKE, actor=Actor.system(), now=NOW + 1, policy_version=old
    )
    assert await holder.reload(audit=store.audit, now=2.0) is True
    assert holder.current.policy.has_rule("sandbox", "toy")


async def _len_is(values: Awaitable[list[str]], n: int) -> bool:
    return len(await values) >= n
