"""The moving parts of the failover scenario (bot/devtools/failover_scenario.py): the real
processes (:class:`Processes`), a reader of what the Slack emulator was asked
(:class:`Watcher`), and a watch on the credential target's ACL users (:class:`TargetWatch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import redis.asyncio as aioredis

from bot.devtools.redis_ha import DOWN_AFTER_MS, SentinelGroup
from bot.devtools.redis_server import RedisServer, free_port
from bot.devtools.slack_emulator import DEFAULT_BOT_TOKEN, EmulatorControl
from bot.devtools.slack_emulator.paths import RESPONSE_URL_METHOD
from bot.domain.model import LIVE
from bot.policy_holder import PolicyHolder
from bot.providers.naming import LOGIN_PREFIX, login_name
from bot.scheduling.reconciler import Reconciler
from bot.service import ServiceContext
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from bot.wiring import build_core, close_core

ROOT: Final = Path(__file__).resolve().parents[2]
START_TIMEOUT_S: Final = 40.0
_GRANT_ID: Final = re.compile(r"g-[a-z0-9]{6,12}")
_PASSWORD: Final = re.compile(r"\*password\*: `([^`]+)`")


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRANTBOT_"))}
    env.update(overrides)
    return env


@dataclass
class Processes:
    """Everything the scenario runs, started by :meth:`running` and stopped after it."""

    redis: SentinelGroup
    target: RedisServer
    emulator: subprocess.Popen[bytes]
    emulator_url: str
    control: EmulatorControl
    serves: list[subprocess.Popen[bytes]]
    serve_urls: list[str]
    logs: list[Path]
    keys: Keys
    secret: str
    policy_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        *,
        base: Path,
        users: Sequence[str],
        policy: str,
        serves: int,
        approver: str,
        channels: Sequence[tuple[str, str]],
        down_after_ms: int = DOWN_AFTER_MS,
    ) -> AsyncIterator[Processes]:
        await asyncio.to_thread(base.mkdir, parents=True, exist_ok=True)
        group = await asyncio.to_thread(
            SentinelGroup(replicas=2, sentinels=3, down_after_ms=down_after_ms).start
        )
        target = RedisServer(appendonly=False)
        emulator: subprocess.Popen[bytes] | None = None
        started: list[subprocess.Popen[bytes]] = []
        try:
            await asyncio.to_thread(target.start)
            directory = base / "directory.json"
            await asyncio.to_thread(
                directory.write_text,
                json.dumps(
                    {
                        "users": [
                            {
                                "id": u,
                                "name": u.lower(),
                                "real_name": u,
                                "email": f"{u.lower()}@example.com",
                            }
                            for u in (*users, approver)
                        ],
                        "usergroups": {},
                        "channels": [{"id": c, "name": n} for c, n in channels],
                    }
                ),
            )
            emulator_proc, emulator_url = await asyncio.to_thread(_start_emulator, directory)
            emulator = emulator_proc
            policy_path = base / "policies.yaml"
            await asyncio.to_thread(policy_path.write_text, policy)
            keys = Keys(prefix=f"failover-{uuid.uuid4().hex[:8]}")
            secret = "failover-" + uuid.uuid4().hex
            env = {"FAILOVER_CACHE_URL": target.url}
            urls, logs = [], []
            for i in range(serves):
                serve_env = _env(
                    SLACK_BOT_TOKEN=DEFAULT_BOT_TOKEN,
                    SLACK_SIGNING_SECRET=secret,
                    SLACK_API_URL=f"{emulator_url.rstrip('/')}/api/",
                    REDIS_URL=group.url,
                    GRANTBOT_POLICY=str(policy_path),
                    GRANTBOT_REDIS_PREFIX=keys.prefix,
                    GRANTBOT_HOST="127.0.0.1",
                    GRANTBOT_DATA_DIR=str(base / f"data-{i}"),
                    **env,
                )
                proc, url, log = await asyncio.to_thread(
                    _spawn_serve, serve_env, base / f"serve-{i}.log"
                )
                started.append(proc)
                urls.append(url)
                logs.append(log)
            for url, proc, log in zip(urls, started, logs, strict=True):
                await asyncio.to_thread(_wait_healthy, url, proc, log)
            async with EmulatorControl(emulator_url) as control:
                yield cls(
                    redis=group,
                    target=target,
                    emulator=emulator_proc,
                    emulator_url=emulator_url,
                    control=control,
                    serves=started,
                    serve_urls=urls,
                    logs=logs,
                    keys=keys,
                    secret=secret,
                    policy_path=policy_path,
                    env=env,
                )
        finally:
            for proc in started:
                _stop(proc)
            if emulator is not None:
                _stop(emulator)
            target.stop()
            group.stop()

    async def reconcile_once(self) -> list[str]:
        """One reconciler pass (the one serve's leader runs, orphans at the target
        included), then the access at the target no live grant accounts for."""
        store = GrantStore.open(self.redis.url, keys=self.keys)
        holder = PolicyHolder.load(self.policy_path)
        context = ServiceContext(store=store, policy=holder, environ={**os.environ, **self.env})
        core = build_core(context)
        try:
            await Reconciler(
                store,
                core.revoker,
                store.revocation_jobs(),
                providers=context.providers.inventory,
            ).sweep()
            target = aioredis.Redis.from_url(self.target.url, decode_responses=True)
            try:
                logins = [u for u in await target.acl_users() if u.startswith(LOGIN_PREFIX)]
            finally:
                await target.aclose()
            ids = {login_name_to_id(u): u for u in logins}
            grants = await store.read_many(ids)
            return [
                u for gid, u in ids.items() if gid not in grants or grants[gid].status not in LIVE
            ]
        finally:
            await close_core(core)
            await store.aclose()
            await holder.aclose()

    async def audit_verify(self) -> tuple[int, str]:
        """`grantbot audit verify` over Sentinel, as an operator would run it."""
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot", "audit", "verify"],
            cwd=ROOT,
            env=_env(REDIS_URL=self.redis.url, GRANTBOT_REDIS_PREFIX=self.keys.prefix),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr).strip()


def login_name_to_id(login: str) -> str:
    """The grant id an ACL login names (the inverse of :func:`login_name`)."""
    return login.removeprefix(LOGIN_PREFIX).replace("_", "-")


def _spawn_serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """One `grantbot serve` on a free port, its stderr to ``log``."""
    port = free_port()
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=ROOT,
            stderr=stderr,
            env={**env, "GRANTBOT_PORT": str(port)},
        )
    return proc, f"http://127.0.0.1:{port}", log


def _start_emulator(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "bot.devtools.slack_emulator",
            "--port",
            "0",
            "--directory",
            str(directory),
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if line.startswith("SLACK_EMULATOR_URL="):
            return proc, line.split("=", 1)[1].strip()
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("the Slack emulator did not start")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"grantbot serve exited {proc.returncode}: {log.read_text()[-2000:]}"
            )
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/healthz", timeout=1) as r,  # noqa: S310
        ):
            if r.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"grantbot serve did not become healthy: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


class _Polling:
    """A watcher polling in a task of its own: ``start`` it, ``stop`` it (cancelled, awaited)."""

    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        raise NotImplementedError


class Watcher(_Polling):
    """Reads the emulator's call log as it grows: each request's answers (by its
    response_url), each request's approval copy, each grant's credential DMs."""

    def __init__(self, control: EmulatorControl, *, approval_channel: str = "C0ACCESS") -> None:
        self._control = control
        self._channel = approval_channel
        self._since = 0
        self._answers: dict[str, list[str]] = {}
        self._copies: dict[str, dict[str, Any]] = {}
        self._passwords: dict[str, set[str]] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                calls, self._since = await self._control.calls_since(self._since)
                for call in calls:
                    self._read(call)
                if calls:
                    self._changed.set()
                    self._changed = asyncio.Event()
            await asyncio.sleep(0.25)

    def _read(self, call: dict[str, Any]) -> None:
        args = call.get("args") or {}
        blob = str(args.get("text") or "") + json.dumps(args.get("blocks") or [])
        if call["method"] == RESPONSE_URL_METHOD:
            self._answers.setdefault(str(args.get("response_url_token")), []).append(blob)
            return
        if call["method"] != "chat.postMessage" or call.get("status") != 200:
            return
        response = call.get("response") or {}
        channel = str(args.get("channel") or "")
        found = _GRANT_ID.search(blob)
        if found is None:
            return
        if channel == self._channel and found.group(0) not in self._copies:
            self._copies[found.group(0)] = {
                "ts": response.get("ts"),
                "channel": response.get("channel", channel),
                "blocks": args.get("blocks") or [],
                "text": args.get("text") or "",
            }
        password = _PASSWORD.search(blob)
        if channel.startswith("U") and password is not None:
            self._passwords.setdefault(found.group(0), set()).add(password.group(1))

    async def _until(self, check: Any, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            found = check()
            if found is not None or time.monotonic() > deadline:
                return found
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=1.0)

    async def answer(self, token: str, *, timeout_s: float) -> str | None:
        def first() -> str | None:
            got = self._answers.get(token)
            return got[0] if got else None

        found: str | None = await self._until(first, timeout_s)
        return found

    async def copy(self, grant_id: str, *, timeout_s: float) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._until(
            lambda: self._copies.get(grant_id), timeout_s
        )
        return found

    def has_credential(self, grant_id: str) -> bool:
        return grant_id in self._passwords

    async def wait_credential(self, grant_id: str, *, timeout_s: float) -> bool:
        return (
            await self._until(lambda: True if grant_id in self._passwords else None, timeout_s)
            is not None
        )

    def credentials(self) -> dict[str, set[str]]:
        """grant id -> the distinct passwords DM'd for it."""
        return {gid: set(pw) for gid, pw in self._passwords.items()}


class TargetWatch(_Polling):
    """Polls the target's ACL users: when each grantbot login appeared and went."""

    def __init__(self, url: str, *, every_s: float = 0.2) -> None:
        self._url = url
        self._every_s = every_s
        self.first_seen: dict[str, float] = {}
        self.gone: dict[str, float] = {}
        self.present: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        client = aioredis.Redis.from_url(self._url, decode_responses=True)
        try:
            while True:
                with contextlib.suppress(Exception):
                    now = time.time()
                    users = {u for u in await client.acl_users() if u.startswith(LOGIN_PREFIX)}
                    for u in users - self.present:
                        self.first_seen.setdefault(u, now)
                        self.gone.pop(u, None)
                    for u in self.present - users:
                        self.gone[u] = now
                    self.present = users
                await asyncio.sleep(self._every_s)
        finally:
            await client.aclose()

    def gone_at(self, grant_id: str) -> float | None:
        login = login_name(grant_id)
        if login in self.present:
            return None
        return self.gone.get(login)

    async def wait_until(self, deadline: float) -> None:
        """Until ``deadline`` (epoch s), or sooner once no grantbot login is left."""
        while time.time() < deadline:
            if not self.present and self.first_seen:
                return
            await asyncio.sleep(0.5)
