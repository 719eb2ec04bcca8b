"""Shared machinery of the revocation benchmarks (bench/revocation_*.py).

Every system under test runs in its own process, started by the bench and fed through Redis,
so what is timed and what is weighed (RSS) is that process alone:

- ``grantbot``: ``python -m bot.devtools.scheduler_worker`` (the Revoker and
  RevocationScheduler the bot runs) with the noop provider, or the Redis ACL provider
  administering a second redis-server started by the bench.
- ``apscheduler_plain``: APScheduler 3 AsyncIOScheduler on its stock RedisJobStore, one job
  per grant whose function only notes the time it ran (``misfire_grace_time=None``; the
  default 1 s would skip jobs in the burst and after a restart).
- ``arq``: arq 0.28 deferred jobs (``_defer_until``), one per grant, defaults (poll 0.5 s,
  10 jobs at once), the job only noting the time.

Lag is ``revoked_at - expires_at``: for grantbot the ``ended_at`` stored on each grant (read
from Redis afterwards), for the baselines the moment their job function started. Grants are
seeded straight into Redis (grant records and indexes as the store writes them, ACL users at
the target) so that seeding 100,000 takes seconds; their creation is not what is measured.

Run the baseline workers by hand with ``python -m bench.revocation_common aps-worker|arq-worker``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import redis

ROOT: Final = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.devtools.redis_server import RedisServer  # noqa: E402
from bot.domain.model import Grant, Status  # noqa: E402
from bot.providers.naming import login_name  # noqa: E402
from bot.store.keys import Keys  # noqa: E402

RESULTS_DIR: Final = ROOT / "bench" / "results"
PREFIX: Final = "bench"
POLICY_VERSION: Final = "0" * 64
SEED_CHUNK: Final = 2000
START_TIMEOUT_S: Final = 30.0
PROGRESS_INTERVAL_S: Final = 0.25
ACL_RULES: Final = ("reset", "on", ">bench-password-not-secret", "~*", "+@read")
REQUESTERS: Final = 200  # grants are spread over this many users
#: The targets from the issue (bench/README.md).
TARGET_SPREAD_P99_MS: Final = 50.0
TARGET_BURST_MAX_LAG_MS: Final = 2000.0
TARGET_BURST_ALL_S: Final = 2.0
TARGET_RESTART_ALL_S: Final = 10.0
TARGET_RSS_MB: Final = 200.0

# -- machine and results ------------------------------------------------------------------


def machine_info(client: redis.Redis) -> dict[str, Any]:
    info = client.info("server")
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis": info.get("redis_version"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "note": (
            "the bench, its redis-server(s) and the process under test share these cores; "
            "other work on the machine shows in the load average"
        ),
    }


def summarize(pairs: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """(expires_at, revoked_at) pairs -> lag percentiles (ms), early count, time to all (s)."""
    if not pairs:
        return {"count": 0}
    lags = sorted(done - due for due, done in pairs)

    def pct(p: float) -> float:
        return round(lags[min(len(lags) - 1, int(p * len(lags)))] * 1000, 2)

    first_due = min(due for due, _ in pairs)
    last_due = max(due for due, _ in pairs)
    last_done = max(done for _, done in pairs)
    return {
        "count": len(pairs),
        "p50_lag_ms": pct(0.50),
        "p99_lag_ms": pct(0.99),
        "max_lag_ms": round(lags[-1] * 1000, 2),
        "mean_lag_ms": round(statistics.fmean(lags) * 1000, 2),
        "early_revocations": sum(1 for lag in lags if lag < 0),
        "time_to_revoke_all_s": round(last_done - first_due, 3),
        "done_after_last_expiry_s": round(last_done - last_due, 3),
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several trials: the median of each numeric figure, "completed" only
    if every trial completed, and the trials themselves."""
    if len(runs) == 1:
        return runs[0]
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [r.get(key) for r in runs]
        if all(isinstance(v, bool) for v in values):
            out[key] = all(values)
        elif all(isinstance(v, int | float) for v in values):
            out[key] = round(statistics.median(values), 3)  # type: ignore[type-var]
        else:
            out[key] = values[0]
    out["trials"] = runs
    return out


def ratio(ours: float | None, baseline: float | None) -> float | None:
    if ours is None or baseline in (None, 0):
        return None
    return round(ours / baseline, 3)  # type: ignore[operator]


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}", flush=True)
    return path


def note(message: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {message}", flush=True)


# -- servers ------------------------------------------------------------------------------


@contextlib.contextmanager
def servers(*, acl_target: bool) -> Iterator[tuple[RedisServer, RedisServer | None]]:
    """A private state redis-server, and a target redis-server for the ACL provider."""
    with RedisServer(appendonly=False) as state:
        if not acl_target:
            yield state, None
            return
        with RedisServer(appendonly=False) as target:
            yield state, target


def flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


# -- seeding grantbot's state -------------------------------------------------------------


def grant_records(expiries: Iterable[float], *, now: float) -> Iterator[Grant]:
    for i, expires_at in enumerate(expiries):
        yield Grant(
            id="g-" + uuid.uuid4().hex[:10].replace("0", "a").replace("1", "b"),
            requester=f"U{i % REQUESTERS:08d}",
            resource="cache",
            role="read",
            provider="bench",
            duration_s=3600,
            reason="bench",
            status=Status.ACTIVE,
            version=1,
            policy_version=POLICY_VERSION,
            created_at=now,
            updated_at=now,
            approved_at=now,
            activated_at=now,
            expires_at=expires_at,
        )


def seed_grants(
    url: str, expiries: Sequence[float], *, acl_target: str | None, with_jobs: bool = True
) -> list[tuple[str, float]]:
    """ACTIVE grants expiring at ``expiries``, their indexes and revocation jobs (and their
    ACL users at ``acl_target``). Returns (grant id, expires_at) pairs."""
    from bot.store.revocation_jobs import job_record

    keys = Keys(prefix=PREFIX)
    client = redis.Redis.from_url(url)
    target = redis.Redis.from_url(acl_target) if acl_target else None
    now = time.time()
    out: list[tuple[str, float]] = []
    batch: list[Grant] = []

    def write(grants: list[Grant]) -> None:
        pipe = client.pipeline(transaction=False)
        for g in grants:
            at = g.expires_at or 0.0
            pipe.hset(keys.grant(g.id), mapping={"v": 1, "s": "ACTIVE", "d": g.model_dump_json()})
            pipe.zadd(keys.all_grants, {g.id: g.created_at})
            pipe.zadd(keys.user_all(g.requester), {g.id: g.created_at})
            pipe.sadd(keys.by_status(Status.ACTIVE), g.id)
            pipe.sadd(keys.user_open(g.requester), g.id)
            pipe.zadd(keys.expiries, {g.id: at})
            if with_jobs:
                pipe.hset(keys.revocation_jobs, g.id, job_record(g.id, at))
                pipe.zadd(keys.revocation_run_times, {g.id: at})
        pipe.execute()
        if target is not None:
            tpipe = target.pipeline(transaction=False)
            for g in grants:
                tpipe.execute_command("ACL", "SETUSER", login_name(g.id), *ACL_RULES)
            tpipe.execute()

    for grant in grant_records(expiries, now=now):
        batch.append(grant)
        out.append((grant.id, grant.expires_at or 0.0))
        if len(batch) >= SEED_CHUNK:
            write(batch)
            batch = []
    if batch:
        write(batch)
    client.close()
    if target is not None:
        target.close()
    return out


def ended_pairs(url: str, ids: Sequence[str]) -> list[tuple[float, float]]:
    """(expires_at, ended_at) of the grants that have ended, read from Redis."""
    keys = Keys(prefix=PREFIX)
    client = redis.Redis.from_url(url)
    pairs: list[tuple[float, float]] = []
    for start in range(0, len(ids), SEED_CHUNK):
        pipe = client.pipeline(transaction=False)
        for gid in ids[start : start + SEED_CHUNK]:
            pipe.hget(keys.grant(gid), "d")
        for raw in pipe.execute():
            data = json.loads(raw)
            if data["status"] in ("EXPIRED", "REVOKED") and data["ended_at"] is not None:
                pairs.append((data["expires_at"], data["ended_at"]))
    client.close()
    return pairs


def count_expired(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.scard(Keys(prefix=PREFIX).by_status(Status.EXPIRED)))
    finally:
        client.close()


def verify_audit(url: str) -> int:
    """Walk the audit chain the run wrote; returns its length (raises if it is broken)."""
    from bot.store.connection import connect
    from bot.store.grants import GrantStore

    async def run() -> int:
        client = connect(url)
        try:
            return (await GrantStore(client, keys=Keys(prefix=PREFIX)).audit.verify()).entries
        finally:
            await client.aclose()

    return asyncio.run(run())


def acl_users_left(target_url: str, ids: Sequence[str]) -> int:
    client = redis.Redis.from_url(target_url, decode_responses=True)
    users = set(client.execute_command("ACL", "USERS"))
    client.close()
    return sum(1 for gid in ids if login_name(gid) in users)


# -- processes ----------------------------------------------------------------------------


@dataclass
class Worker:
    """A process under test; its stdout is read by a thread (READY, RSS and DONE lines)."""

    proc: subprocess.Popen[str]
    started_at: float
    ready_at: float | None = None
    rss_mb: list[float] = field(default_factory=list)
    done: int = 0
    leader: bool = False
    _ready: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "READY":
                self.ready_at = time.time()
                self._ready.set()
            elif parts[0] == "RSS":
                self.rss_mb.append(float(parts[1]))
                if len(parts) >= 4:
                    self.leader = parts[3] == "1"
            elif parts[0] == "DONE":
                self.done = int(parts[1])
                self.rss_mb.append(float(parts[3]))

    def wait_ready(self) -> None:
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"{self.proc.args!r} did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def max_rss_mb(self) -> float | None:
        return round(max(self.rss_mb), 1) if self.rss_mb else None


def spawn(args: list[str]) -> Worker:
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    worker = Worker(proc=proc, started_at=time.time())
    threading.Thread(target=worker.watch, daemon=True).start()
    return worker


def spawn_grantbot(url: str, *, acl_target: str | None) -> Worker:
    args = ["-m", "bot.devtools.scheduler_worker", "--redis", url, "--prefix", PREFIX]
    args += ["--replica-id", "bench", "--report-rss"]
    # Tuning experiments: extra worker options, e.g. BENCH_WORKER_ARGS="--batch-size 1000".
    args += os.environ.get("BENCH_WORKER_ARGS", "").split()
    if acl_target:
        args += ["--provider", "redis_acl", "--target", acl_target]
    return spawn(args)


def wait_leader(url: str, worker: Worker) -> None:
    """Until the worker holds the scheduler lease (it then runs jobs)."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + START_TIMEOUT_S
    while client.get(Keys(prefix=PREFIX).scheduler_lease) is None:
        if time.monotonic() > deadline or worker.proc.poll() is not None:
            raise RuntimeError("the grantbot worker did not take the lease")
        time.sleep(0.02)
    client.close()


def wait_until(predicate: Any, *, timeout_s: float, poll_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()


def at_offsets(offsets: Sequence[float]) -> list[float]:
    """Absolute times ``offsets`` seconds from now."""
    now = time.time()
    return [now + off for off in offsets]


def run_grantbot(
    url: str,
    offsets: Sequence[float],
    *,
    acl_target: str | None,
    timeout_s: float,
    background: Sequence[float] = (),
    seed_first: bool = False,
) -> dict[str, Any]:
    """Run the grantbot worker over grants expiring ``offsets`` seconds after they are
    seeded, until all have ended.

    ``background``: offsets of more grants, seeded before the worker starts and not awaited
    (e.g. 100,000 scheduled far ahead). ``seed_first``: the measured grants too are seeded
    before the worker starts (restart recovery), and time is also counted from its start.
    """
    if background:
        seed_grants(url, at_offsets(background), acl_target=acl_target)
    grants = seed_grants(url, at_offsets(offsets), acl_target=acl_target) if seed_first else []
    worker = spawn_grantbot(url, acl_target=acl_target)
    try:
        worker.wait_ready()
        wait_leader(url, worker)
        if not seed_first:
            grants = seed_grants(url, at_offsets(offsets), acl_target=acl_target)
        ok = wait_until(lambda: count_expired(url) >= len(grants), timeout_s=timeout_s, poll_s=0.05)
        all_done_at = time.time()
        time.sleep(1.0)  # let the worker report its RSS once more after the work
    finally:
        worker.stop()
    ids = [gid for gid, _ in grants]
    pairs = ended_pairs(url, ids)
    result = summarize(pairs)
    result["completed"] = ok and len(pairs) == len(ids)
    result["rss_max_mb"] = worker.max_rss_mb
    if seed_first:
        result["from_process_start_s"] = round(all_done_at - worker.started_at, 3)
        if worker.ready_at is not None:
            result["from_ready_s"] = round(all_done_at - worker.ready_at, 3)
    result["audit_entries_verified"] = verify_audit(url)
    if acl_target:
        result["acl_users_left_at_target"] = acl_users_left(acl_target, ids)
    return result


# -- baseline: APScheduler on its stock RedisJobStore --------------------------------------

APS_JOBS_KEY: Final = "apscheduler.jobs"
APS_RUN_TIMES_KEY: Final = "apscheduler.run_times"
RAN: list[tuple[str, float]] = []


async def baseline_job(job_id: str) -> None:
    """The baselines' job: note when it ran; nothing else."""
    RAN.append((job_id, time.time()))


def seed_aps_jobs(url: str, expiries: Sequence[float], *, id_prefix: str = "g") -> dict[str, float]:
    """One stock APScheduler job per expiry, written as RedisJobStore.add_job writes it."""
    from types import SimpleNamespace

    from apscheduler.job import Job
    from apscheduler.triggers.date import DateTrigger

    client = redis.Redis.from_url(url)
    scheduled: dict[str, float] = {}
    pipe = client.pipeline(transaction=False)
    scheduler = SimpleNamespace(timezone=UTC)  # all Job() needs of a scheduler
    for i, at in enumerate(expiries):
        job_id = f"{id_prefix}{i:07d}"
        run_date = datetime.fromtimestamp(at, UTC)
        job = Job(
            scheduler,
            id=job_id,
            func="bench.revocation_common:baseline_job",
            trigger=DateTrigger(run_date=run_date, timezone=UTC),
            executor="default",
            args=(job_id,),
            kwargs={},
            name=job_id,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
            next_run_time=run_date,
        )
        pipe.hset(APS_JOBS_KEY, job_id, pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL))
        pipe.zadd(APS_RUN_TIMES_KEY, {job_id: at})
        scheduled[job_id] = at
        if len(pipe) >= 2 * SEED_CHUNK:
            pipe.execute()
    pipe.execute()
    client.close()
    return scheduled


async def aps_worker(url: str, out: Path) -> None:
    from apscheduler.jobstores.redis import RedisJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    params = redis.Redis.from_url(url).connection_pool.connection_kwargs
    store = RedisJobStore(
        jobs_key=APS_JOBS_KEY,
        run_times_key=APS_RUN_TIMES_KEY,
        host=params["host"],
        port=params["port"],
    )
    scheduler = AsyncIOScheduler(
        timezone=UTC, jobstores={"default": store}, job_defaults={"misfire_grace_time": None}
    )
    # The bench writes the jobs from its own process; SIGUSR1 then does what an in-process
    # add_job would have done: wake the scheduler to look at the store again.
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, scheduler.wakeup)
    await _serve_baseline(out, start=scheduler.start, stop=lambda: scheduler.shutdown(False))


# -- baseline: arq deferred jobs ----------------------------------------------------------


def seed_arq_jobs(url: str, expiries: Sequence[float], *, id_prefix: str = "g") -> dict[str, float]:
    """One arq job per expiry, deferred until then, written as ArqRedis.enqueue_job does."""
    from arq.constants import default_queue_name, job_key_prefix
    from arq.jobs import serialize_job

    client = redis.Redis.from_url(url)
    scheduled: dict[str, float] = {}
    now_ms = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for i, at in enumerate(expiries):
        job_id = f"{id_prefix}{i:07d}"
        score = int(at * 1000)
        job = serialize_job("baseline_job", (job_id,), {}, None, now_ms)
        pipe.psetex(job_key_prefix + job_id, score - now_ms + 86_400_000, job)
        pipe.zadd(default_queue_name, {job_id: score})
        scheduled[job_id] = score / 1000
        if len(pipe) >= 2 * SEED_CHUNK:
            pipe.execute()
    pipe.execute()
    client.close()
    return scheduled


async def arq_worker(url: str, out: Path) -> None:
    from arq.connections import RedisSettings
    from arq.worker import Worker as ArqWorker
    from arq.worker import func

    async def job(ctx: dict[str, Any], job_id: str) -> None:
        await baseline_job(job_id)

    worker = ArqWorker(
        functions=[func(job, name="baseline_job")],
        redis_settings=RedisSettings.from_dsn(url),
        handle_signals=False,
        log_results=False,
    )
    task: asyncio.Task[None] | None = None

    def start() -> None:
        nonlocal task
        task = asyncio.get_running_loop().create_task(worker.async_run())

    def stop() -> None:
        if task is not None:
            task.cancel()

    await _serve_baseline(out, start=start, stop=stop)
    with contextlib.suppress(Exception):
        await worker.close()


async def _serve_baseline(out: Path, *, start: Any, stop: Any) -> None:
    """Run a baseline until SIGTERM, printing progress; then write what ran to ``out``."""
    from bot.devtools.scheduler_worker import rss_mb

    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    start()
    print("READY baseline", flush=True)
    while not done.is_set():
        print(f"DONE {len(RAN)} RSS {rss_mb():.1f}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), PROGRESS_INTERVAL_S)
    stop()
    await asyncio.sleep(0.1)
    out.write_text(json.dumps(RAN))


def run_baseline(
    kind: str,
    url: str,
    offsets: Sequence[float],
    *,
    timeout_s: float,
    background: Sequence[float] = (),
    seed_first: bool = False,
) -> dict[str, Any]:
    """Run the ``kind`` baseline ("apscheduler_plain" or "arq") over jobs due ``offsets``
    seconds after they are written; ``background`` and ``seed_first`` as in run_grantbot."""
    seed = seed_aps_jobs if kind == "apscheduler_plain" else seed_arq_jobs
    command = "aps-worker" if kind == "apscheduler_plain" else "arq-worker"
    out = Path(f"/tmp/grantbot-bench-{kind}-{uuid.uuid4().hex}.json")  # noqa: S108
    if background:
        seed(url, at_offsets(background), id_prefix="bg")
    scheduled: dict[str, float] = {}
    if seed_first:
        scheduled = seed(url, at_offsets(offsets))
    worker = spawn(["-m", "bench.revocation_common", command, "--redis", url, "--out", str(out)])
    try:
        worker.wait_ready()
        if not seed_first:
            scheduled = seed(url, at_offsets(offsets))
            if kind == "apscheduler_plain":
                worker.proc.send_signal(signal.SIGUSR1)  # as add_job would wake it
        wanted = set(scheduled)
        ok = wait_until(lambda: worker.done >= len(wanted), timeout_s=timeout_s, poll_s=0.05)
        all_done_at = time.time()
        time.sleep(1.0)
    finally:
        worker.stop()
    ran = json.loads(out.read_text()) if out.exists() else []
    out.unlink(missing_ok=True)
    first_run: dict[str, float] = {}
    for job_id, at in ran:
        first_run.setdefault(job_id, at)
    pairs = [(scheduled[j], at) for j, at in first_run.items() if j in wanted]
    result = summarize(pairs)
    result["completed"] = ok and len(pairs) == len(wanted)
    result["duplicate_runs"] = len(ran) - len(first_run)
    result["rss_max_mb"] = worker.max_rss_mb
    if seed_first:
        result["from_process_start_s"] = round(all_done_at - worker.started_at, 3)
        if worker.ready_at is not None:
            result["from_ready_s"] = round(all_done_at - worker.ready_at, 3)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.revocation_common")
    p.add_argument("command", choices=["aps-worker", "arq-worker"])
    p.add_argument("--redis", required=True)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    # The job function must be this module's (bench.revocation_common:baseline_job), not
    # __main__'s, so that the stored textual reference resolves to where RAN is collected.
    import bench.revocation_common as this

    worker = this.aps_worker if args.command == "aps-worker" else this.arq_worker
    asyncio.run(worker(args.redis, args.out))


if __name__ == "__main__":
    main()


# -- one benchmark: every system over the same scenario ----------------------------------

SYSTEMS: Final = ("grantbot_noop", "grantbot_redis_acl", "apscheduler_plain", "arq")


def run_bench(
    name: str,
    *,
    description: str,
    params: dict[str, Any],
    offsets: Sequence[float],
    timeout_s: float,
    targets: dict[str, tuple[str, float]],
    background: Sequence[float] = (),
    seed_first: bool = False,
    systems: Sequence[str] = SYSTEMS,
    trials: int = 1,
    baseline_trials: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Run ``systems`` one after another over the same scenario, each trial on a fresh
    Redis (and, for the ACL provider, a fresh target), and write bench/results/<name>.json.
    With several trials a system's figures are the median of each figure over its trials
    (every trial is kept under "trials"), which tames a noisy shared machine.

    ``targets``: figure name -> (result key, limit); a target is met when grantbot's figure
    is at most the limit with both providers.
    """
    results: dict[str, Any] = {}
    machine: dict[str, Any] = {}
    for system in systems:
        runs: list[dict[str, Any]] = []
        n = trials if system.startswith("grantbot") else (baseline_trials or {}).get(system, trials)
        for trial in range(n):
            with servers(acl_target=system == "grantbot_redis_acl") as (state, target):
                if not machine:
                    client = redis.Redis.from_url(state.url)
                    machine = machine_info(client)
                    client.close()
                note(f"{name}: {system} (trial {trial + 1}/{n}) ...")
                if system.startswith("grantbot"):
                    run = run_grantbot(
                        state.url,
                        offsets,
                        acl_target=target.url if target else None,
                        timeout_s=timeout_s,
                        background=background,
                        seed_first=seed_first,
                    )
                else:
                    run = run_baseline(
                        system,
                        state.url,
                        offsets,
                        timeout_s=timeout_s,
                        background=background,
                        seed_first=seed_first,
                    )
                note(f"{name}: {system}: {json.dumps(run)}")
                runs.append(run)
        results[system] = median_of(runs)
    ratios: dict[str, Any] = {}
    compared = ("p99_lag_ms", "max_lag_ms", "time_to_revoke_all_s", "from_ready_s", "rss_max_mb")
    for ours in (s for s in results if s.startswith("grantbot")):
        for base in (s for s in results if not s.startswith("grantbot")):
            ratios[f"{ours}/{base}"] = {
                k: ratio(results[ours].get(k), results[base].get(k))
                for k in compared
                if results[ours].get(k) is not None and results[base].get(k) is not None
            }
    met = {
        label: {
            ours: results[ours].get(key) is not None and results[ours][key] <= limit
            for ours in results
            if ours.startswith("grantbot")
        }
        for label, (key, limit) in targets.items()
    }
    payload = {
        "benchmark": name,
        "description": description,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "params": params,
        "results": results,
        "ratios": ratios,
        "targets": {label: {"key": k, "limit": v} for label, (k, v) in targets.items()},
        "targets_met": met,
    }
    write_results(name, payload)
    return payload
