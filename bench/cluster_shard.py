"""What one Redis Cluster shard sustains: grants requested, approved, issued and revoked per
second (noop provider), against the ceiling a large company needs.

Every key grantbot writes is under one hash tag, so on a cluster all of grantbot lives on the
master owning that slot: one shard is the ceiling. The bench starts a real three-master
cluster (`--cluster-enabled`, loopback) and drives the service as `grantbot serve` does
(the service and revoker bot/wiring.py builds, the store on `redis+cluster://`), in phases:

- request: `request_access` (policy judged, PENDING stored with its audit entry);
- approve: `approve`, which on the one required approval also issues (noop), stores ACTIVE
  and checks replication (no replicas here: a read); no scheduler runs here, so no revocation
  job is written (a job is one more write of the same slot);
- revoke: the revoker ends each grant (target, REVOKED with its audit entry, job removed).

Each phase runs ``--concurrency`` workers in ``--processes`` processes for a fixed number of
grants. The shard's own CPU (INFO cpu of the owning master, user + sys) is read around each
phase: ``per_s_at_full_shard`` divides the rate by the share of one core the shard used, the
rate the shard would sustain if it, not the client, were the limit (Redis runs commands on
one thread). The baseline is the same run on a single non-cluster redis-server.

    .venv/bin/python bench/cluster_shard.py [--grants 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.slack_common import RESULTS_DIR, write_results  # noqa: E402
from bot.devtools.redis_ha import ClusterNodes  # noqa: E402
from bot.devtools.redis_server import RedisServer  # noqa: E402
from bot.domain.model import Actor, ActorKind, Origin  # noqa: E402
from bot.errors import ConcurrencyError, GrantbotError  # noqa: E402
from bot.policy_holder import PolicyHolder  # noqa: E402
from bot.revocation.revoker import Revoker  # noqa: E402
from bot.service import GrantService, ServiceContext  # noqa: E402
from bot.store.grants import GrantStore  # noqa: E402
from bot.store.keys import Keys  # noqa: E402
from bot.wiring import build_core, close_core  # noqa: E402

REQUESTERS = 500
POLICY = f"""\
groups:
  eng: {{members: [{", ".join(f"U3{i:07d}" for i in range(REQUESTERS))}]}}
  approvers: {{members: [U0BENCHAPPROVER]}}
defaults:
  requesters: {{groups: [eng]}}
  approvers: {{groups: [approvers]}}
  max_duration: 8h
resources:
  sandbox:
    provider: {{type: noop}}
    roles:
      play: {{}}
"""
PHASES = ("request", "approve", "revoke")

#: 50,000 people asking twice a day, spread over an 8-hour working day, and a morning peak
#: of ten times that average.
COMPANY_PEOPLE = 50_000
ASKS_PER_DAY = 2
WORKDAY_S = 8 * 3600
PEAK_FACTOR = 10


async def _phase(
    name: str,
    store: GrantStore,
    service: GrantService,
    revoker: Revoker,
    items: list[Any],
    concurrency: int,
) -> tuple[list[Any], int, int]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    out: list[Any] = []
    conflicts: list[Any] = []
    failed: list[Any] = []
    operator = Actor(kind=ActorKind.OPERATOR, id="bench")

    async def worker() -> None:
        while not queue.empty():
            item = queue.get_nowait()
            try:
                await one(item)
            except ConcurrencyError:
                # Another process kept moving the audit head: asked again, as a person would.
                conflicts.append(item)
                queue.put_nowait(item)
            except GrantbotError:
                failed.append(item)  # e.g. approved, but its issue lost that race: not retried

    async def one(item: Any) -> None:
        if name == "request":
            asked = await service.request_access(
                user=item,
                resource="sandbox",
                role="play",
                duration_s=4 * 3600,
                reason="shard bench",
                tickets=[],
                origin=Origin(surface="command"),
            )
            out.append(asked.grant.id)
        elif name == "approve":
            out.append((await service.approve(item, user="U0BENCHAPPROVER")).id)
        else:
            out.append((await revoker.revoke(item, actor=operator, reason="bench")).id)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out, len(conflicts), len(failed)


def _worker(
    url: str,
    prefix: str,
    policy: str,
    grants: int,
    concurrency: int,
    barrier: Any,
    results: Any,
    index: int,
) -> None:
    async def main() -> None:
        holder = PolicyHolder.load(Path(policy))
        store = GrantStore.open(url, keys=Keys(prefix=prefix))
        core = build_core(ServiceContext(store=store, policy=holder))
        service, revoker = core.service, core.revoker
        users = [f"U3{(index * grants + i) % REQUESTERS:07d}" for i in range(grants)]
        items: list[Any] = users
        timings = {}
        for name in PHASES:
            await asyncio.to_thread(barrier.wait)
            start = time.perf_counter()
            items, conflicts, failed = await _phase(
                name, store, service, revoker, items, concurrency
            )
            timings[name] = (start, time.perf_counter(), len(items), conflicts, failed)
            await asyncio.to_thread(barrier.wait)
        results[index] = timings
        await close_core(core)
        await store.aclose()
        await holder.aclose()

    asyncio.run(main())


def _cpu(ports: list[int]) -> float:
    total = 0.0
    for port in ports:
        client = redis.Redis(port=port)
        try:
            info = client.info("cpu")
            total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        finally:
            client.close()
    return total


def measure_on(url: str, ports: list[int], opts: argparse.Namespace, policy: str) -> dict[str, Any]:
    """Run the phases against ``url``; the shard's CPU is summed over ``ports`` (every
    master of a cluster: only the one owning the slot works, the others idle)."""
    ctx = multiprocessing.get_context("spawn")
    prefix = f"shard-{uuid.uuid4().hex[:8]}"
    barrier = ctx.Barrier(opts.processes + 1)
    results = ctx.Manager().dict()
    per = opts.grants // opts.processes
    procs = [
        ctx.Process(
            target=_worker, args=(url, prefix, policy, per, opts.concurrency, barrier, results, i)
        )
        for i in range(opts.processes)
    ]
    for p in procs:
        p.start()
    figures: dict[str, Any] = {}
    for name in PHASES:
        barrier.wait()  # the phase starts
        cpu0, t0 = _cpu(ports), time.perf_counter()
        barrier.wait()  # the phase ended in every process
        cpu1, t1 = _cpu(ports), time.perf_counter()
        figures[name] = {"cpu_s": cpu1 - cpu0, "wall_s": t1 - t0}
    for p in procs:
        p.join(timeout=120)
    out: dict[str, Any] = {}
    for name in PHASES:
        done = sum(results[i][name][2] for i in range(opts.processes))
        conflicts = sum(results[i][name][3] for i in range(opts.processes))
        failed = sum(results[i][name][4] for i in range(opts.processes))
        wall = figures[name]["wall_s"]
        share = figures[name]["cpu_s"] / wall if wall else 0.0
        rate = done / wall if wall else 0.0
        out[name] = {
            "grants": done,
            "seconds": round(wall, 2),
            "per_s": round(rate, 1),
            "shard_cpu_share_of_one_core": round(share, 3),
            "per_s_at_full_shard": round(rate / share, 1) if share else None,
            "audit_head_conflicts_asked_again": conflicts,
            "failed": failed,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=3000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    opts = parser.parse_args(argv)
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policies.yaml"
        policy.write_text(POLICY)
        with ClusterNodes(masters=3) as cluster:
            results = measure_on(cluster.url, [n.port for n in cluster.nodes], opts, str(policy))
        with RedisServer(appendonly=True) as single:
            baseline = measure_on(single.url, [single.port], opts, str(policy))
    average = COMPANY_PEOPLE * ASKS_PER_DAY / WORKDAY_S
    need = {
        "people": COMPANY_PEOPLE,
        "asks_per_person_per_day": ASKS_PER_DAY,
        "average_requests_per_s_over_8h": round(average, 2),
        "peak_requests_per_s_at_10x": round(average * PEAK_FACTOR, 1),
    }
    slowest = min((v["per_s_at_full_shard"] or v["per_s"]) for v in results.values())
    report = {
        "benchmark": "cluster_shard",
        "date": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "redis": _redis_version(),
            "load_average_at_start": load_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "note": "the client processes and the cluster share the cores; per_s is what the "
            "clients reached, per_s_at_full_shard what the shard would take at one full core",
        },
        "params": vars(opts),
        "results": results,
        "baseline_single_redis": baseline,
        "large_company": need,
        "ceiling_grants_per_s": slowest,
        "headroom_over_peak": round(slowest / need["peak_requests_per_s_at_10x"], 1),
    }
    path = RESULTS_DIR / "cluster_shard.json"
    write_results(path, report)
    print(f"wrote {path}: {results}")
    return 0


def _redis_version() -> str:
    import subprocess

    from bot.devtools.redis_server import find_redis_server

    words = subprocess.run(
        [find_redis_server(), "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    return next((w.split("=", 1)[1] for w in words if w.startswith("v=")), "?")


if __name__ == "__main__":
    sys.exit(main())
