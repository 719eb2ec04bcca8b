"""The audit log leaves the box: `audit export --after SEQ [--follow]` resumes exactly after
what it printed, and serve's shipper delivers every entry in order to a file or an HTTP
collector, surviving the collector being killed and restarted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot import metrics
from bot.audit.duties import audit_duties, plan_duties
from bot.audit.export import export_line
from bot.audit.shipper import Shipper
from bot.audit.signing import generate
from bot.audit.sinks import FileSink, HttpSink, sink_from_setting
from bot.config import Settings
from bot.devtools.redis_server import free_port
from bot.errors import ConfigError
from bot.store.grants import GrantStore
from tests.factories import NOW
from tests.integration.support import ROOT, grantbot, wait_for


async def _append(store: GrantStore, n: int, *, start: int = 0) -> None:
    for i in range(start, start + n):
        await store.audit.append("NOTE", actor="test", at=NOW + i, details={"i": i})


def _seqs(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [json.loads(line)["seq"] for line in path.read_text().splitlines() if line]


def assert_in_order_without_loss(seqs: list[int], total: int) -> None:
    """Every seq 1..total arrived, and nothing ever arrived ahead of a missing one: each
    line is the next new seq or a re-sent one (at least once), never a jump."""
    high = 0
    for seq in seqs:
        assert seq <= high + 1, f"seq {seq} arrived before {high + 1}"
        high = max(high, seq)
    assert sorted(set(seqs)) == list(range(1, total + 1))


async def test_find_seq_finds_every_entry_even_many_per_millisecond(store: GrantStore) -> None:
    """Bisecting on stream ids finds each seq, including several in one millisecond."""
    await _append(store, 300)
    for seq in (1, 2, 57, 150, 299, 300):
        entry = await store.audit.find_seq(seq)
        assert entry is not None and entry.seq == seq
    assert await store.audit.find_seq(301) is None


def test_export_after_resumes_and_names_a_missing_seq(store: GrantStore, redis_url: str) -> None:
    """--after SEQ prints exactly the entries after SEQ; an unknown SEQ is one line, exit 1."""
    env = {"REDIS_URL": redis_url, "GRANTBOT_REDIS_PREFIX": store.keys.prefix}
    done = grantbot("audit", "export", "--after", "0", env=env)
    assert done.returncode == 0 and done.stdout == ""
    missing = grantbot("audit", "export", "--after", "5", env=env)
    assert missing.returncode == 1
    assert "--after 5: no such entry; the log ends at seq 0" in missing.stderr


async def test_export_after_seq_prints_the_rest(store: GrantStore, redis_url: str) -> None:
    """After 10 of 25 entries, --after 10 prints seq 11..25 with their chain fields."""
    await _append(store, 25)
    env = {"REDIS_URL": redis_url, "GRANTBOT_REDIS_PREFIX": store.keys.prefix}
    done = await asyncio.to_thread(grantbot, "audit", "export", "--after", "10", env=env)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [x["seq"] for x in lines] == list(range(11, 26))
    assert lines[0]["details"] == {"i": 10} and "hash" in lines[0]


async def test_export_follow_prints_new_entries_and_resumes_after_a_restart(
    store: GrantStore, redis_url: str
) -> None:
    """--follow prints entries as they are appended; killed and restarted with --after the
    last seq it printed, it carries on with nothing missing or repeated."""
    env = {"REDIS_URL": redis_url, "GRANTBOT_REDIS_PREFIX": store.keys.prefix}
    await _append(store, 5)
    printed: list[int] = []

    async def follow(after: int, until: int) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "audit", "export", "--follow", "--after", str(after),
            cwd=ROOT, env={**_base_env(), **env}, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        try:
            while not printed or printed[-1] < until:
                line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
                assert line, "export --follow ended"
                printed.append(json.loads(line)["seq"])
                if printed[-1] == 5 and until > 5:
                    await _append(store, until - 5, start=5)  # arrives while it follows
        finally:
            proc.kill()
            await proc.wait()

    await follow(0, 12)
    await _append(store, 8, start=12)
    await follow(printed[-1], 20)
    assert printed == list(range(1, 21))


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRANTBOT_"))}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts the stand-in collector on one port and file (again after a kill)."""
    port = free_port()
    out = tmp_path / "received.jsonl"
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.devtools.audit_receiver", "--port", str(port),
             "--out", str(out), "--token", "siem-token"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(proc)
        deadline = time.monotonic() + 20
        while not _listening(port):
            assert time.monotonic() < deadline and proc.poll() is None, "receiver did not start"
            time.sleep(0.05)
        return proc

    start.port = port  # type: ignore[attr-defined]
    start.out = out  # type: ignore[attr-defined]
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


async def test_http_shipping_survives_the_collector_being_killed(
    store: GrantStore, receiver: Callable[[], subprocess.Popen[bytes]]
) -> None:
    """The collector is SIGKILLed mid-stream and started again later: the shipper retries
    the batch it could not deliver, and the collector ends up with every entry, in order."""
    total_first, total = 1500, 2500
    await _append(store, total_first)
    proc = receiver()
    out: Path = receiver.out  # type: ignore[attr-defined]
    sink = HttpSink(f"http://127.0.0.1:{receiver.port}/audit", token="siem-token")  # type: ignore[attr-defined]
    positions = store.ship_positions(sink.id)
    shipper = Shipper(
        store.audit, positions, sink, leader=lambda: True, batch=50,
        retry_min_s=0.05, retry_max_s=0.2, block_ms=200,
    )  # fmt: skip
    failures = metrics.AUDIT_SHIP_FAILURES.labels(sink="http")
    task = asyncio.create_task(shipper.run())
    try:
        await wait_for(lambda: len(_seqs(out)) >= 400, what="400 entries shipped", timeout_s=30)
        proc.kill()  # mid-stream: the shipper is sending batch after batch
        proc.wait()
        before = failures._value.get()
        await _append(store, total - total_first, start=total_first)
        await wait_for(
            lambda: failures._value.get() >= before + 3, what="3 failures", timeout_s=30
        )  # it keeps retrying
        assert shipper.position is not None and shipper.position.seq < total
        receiver()

        async def all_stored() -> bool:
            """The stored position (moved after the in-memory one) has reached the end."""
            stored = await positions.get()
            return stored is not None and stored.seq == total

        await wait_for(all_stored, what="every entry shipped", timeout_s=30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sink.aclose()
    assert_in_order_without_loss(_seqs(out), total)
    stored = await positions.get()
    assert stored is not None and stored.seq == total


async def test_file_shipping_resumes_from_the_position_in_redis(
    store: GrantStore, tmp_path: Path
) -> None:
    """A new shipper (a restart, or another replica) starts after the position stored in
    Redis: the file gets each entry once, in order."""
    out = tmp_path / "audit.jsonl"
    await _append(store, 120)
    for expected in (120, 200):
        sink = FileSink(out)
        positions = store.ship_positions(sink.id)
        shipper = Shipper(store.audit, positions, sink, leader=lambda: True, batch=50)
        while await shipper.ship_next():
            pass
        assert shipper.position is not None and shipper.position.seq == expected
        await _append(store, 80, start=120)
    assert _seqs(out)[:200] == list(range(1, 201))
    first = json.loads(out.read_text().splitlines()[0])
    entry = await store.audit.find_seq(1)
    assert entry is not None and json.loads(export_line(entry)) == first


async def test_shipping_starts_when_the_replica_becomes_leader(
    store: GrantStore, tmp_path: Path
) -> None:
    """Only the scheduler's leader ships: a shipper started on a follower begins once its
    replica takes the lease, from the position in Redis."""
    out = tmp_path / "audit.jsonl"
    await _append(store, 10)
    sink = FileSink(out)
    positions = store.ship_positions(sink.id)
    leading = asyncio.Event()
    shipper = Shipper(store.audit, positions, sink, leader=leading.is_set, batch=5)
    task = asyncio.create_task(shipper.run())
    try:
        leading.set()
        await wait_for(lambda: len(_seqs(out)) == 10, what="10 entries", timeout_s=30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_ship_destinations_are_checked(tmp_path: Path) -> None:
    """https:// and files are accepted; plain http:// only to loopback; anything else is a
    ConfigError naming GRANTBOT_AUDIT_SHIP_TO."""
    assert isinstance(sink_from_setting("https://siem.example/in", token=None), HttpSink)
    assert isinstance(sink_from_setting("http://127.0.0.1:9/in", token=None), HttpSink)
    assert isinstance(sink_from_setting(f"file://{tmp_path}/a.jsonl", token=None), FileSink)
    assert isinstance(sink_from_setting(f"{tmp_path}/a.jsonl", token=None), FileSink)
    for bad in ("http://siem.example/in", "ftp://x/y", "relative.jsonl", "/no/such/dir/a"):
        with pytest.raises(ConfigError, match="GRANTBOT_AUDIT_SHIP_TO"):
            sink_from_setting(bad, token=None)


async def test_serve_duties_ship_and_checkpoint_at_shutdown(
    store: GrantStore, tmp_path: Path
) -> None:
    """What serve runs for auditors, from its settings: the leader ships to the file and
    writes a checkpoint when it stops."""
    key_file = tmp_path / "audit.key"
    key_file.write_bytes(generate()[0])
    out = tmp_path / "shipped.jsonl"
    settings = Settings(
        GRANTBOT_AUDIT_SIGNING_KEY=str(key_file),
        GRANTBOT_AUDIT_SHIP_TO=str(out),
        GRANTBOT_AUDIT_CHECKPOINT_INTERVAL=3600,
    )  # type: ignore[call-arg]
    await _append(store, 30)
    async with audit_duties(plan_duties(settings), store, leader=lambda: True, clock=time.time):
        await wait_for(lambda: len(_seqs(out)) == 30, what="30 entries", timeout_s=30)
    last = await store.checkpoints.last()
    assert last is not None and '"seq":30' in last.payload
