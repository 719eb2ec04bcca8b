"""A Redis master killed in the middle of a stream of access requests, end to end.

One master, two replicas and three sentinels (:class:`~bot.devtools.redis_ha.SentinelGroup`),
two ``grantbot serve`` processes over ``redis+sentinel://``, the Slack emulator, and a real
target (a Redis whose ACL users are the credentials). People ask (``/access request``), an
approver clicks Approve on each request's copy, the credential arrives by DM; a person told
"try again shortly", or whose request a failover lost, asks again, as a person would. Part way
through, the master gets SIGKILL. Afterwards the target is watched until every credential has
ended, one reconciler pass is run, and the audit chain is verified.

``tests/e2e/test_failover.py`` asserts on :class:`Outcome`; ``bench/failover.py`` records its
figures.
"""

from __future__ import annotations

import asyncio
import random
import re
import tempfile
import time
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bot.devtools.failover_parts import Processes, TargetWatch, Watcher
from bot.devtools.redis_ha import DOWN_AFTER_MS
from bot.devtools.slack_driver import SlackDriver
from bot.devtools.slack_driver.wire import FORM_CONTENT_TYPE
from bot.domain.model import Status
from bot.errors import GrantbotError, NotFound
from bot.service.confirmation import NOT_CONFIRMED
from bot.slack import ids
from bot.store.grants import GrantStore

APPROVER: Final = "U0FAILAPPROVER"
ASK_CHANNEL: Final = ("C0GENERAL", "general")
APPROVAL_CHANNEL: Final = "C0ACCESS"
#: How long a person waits for any answer to a request before calling it unanswered.
ANSWER_TIMEOUT_S: Final = 45.0
MAX_ASKS: Final = 6
MAX_CLICKS: Final = 8
_GRANT_ID: Final = re.compile(r"g-[a-z0-9]{6,12}")


@dataclass(frozen=True, slots=True)
class Options:
    requests: int = 300
    min_s: int = 15
    max_s: int = 60
    rate_per_s: float = 10.0
    #: The master is killed once this share of the requests has been sent (None: never, the
    #: baseline run).
    kill_at: float | None = 0.4
    serves: int = 2
    seed: int = 12
    #: How long the sentinels wait before calling a silent master down.
    down_after_ms: int = DOWN_AFTER_MS


@dataclass
class Person:
    user: str
    duration_s: int
    asks: int = 0
    try_again: int = 0
    lost: int = 0
    taken_back: int = 0
    answered: bool = True
    outcome: str = "pending"
    grant_ids: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What happened, with every figure the test and the bench need."""

    people: list[Person]
    failover_s: float
    killed_at: float
    #: grant id -> (expires_at, gone_at or None) for every credential that reached a DM.
    delivered: dict[str, tuple[float, float | None]]
    #: grant ids whose DM carried more than one distinct password.
    double_credentials: list[str]
    #: DM'd credentials whose grant record was not in Redis afterwards.
    grants_lost: list[str]
    #: access at the target after one reconciler pass that no live grant accounts for.
    orphans_after_reconcile: list[str]
    audit_verify_rc: int
    audit_verify_out: str
    serve_logs: list[Path]

    @property
    def unanswered(self) -> list[str]:
        return [p.user for p in self.people if not p.answered]

    def revocations_missed(self, *, slack_s: float = 10.0) -> list[str]:
        """Credentials not gone by expiry + failover time + ``slack_s``."""
        allowed = self.failover_s + slack_s
        return [
            gid
            for gid, (expires, gone) in self.delivered.items()
            if gone is None or gone > expires + allowed
        ]

    def figures(self) -> dict[str, Any]:
        late = [gone - exp for exp, gone in self.delivered.values() if gone is not None]
        return {
            "requests": len(self.people),
            "credentials_delivered": len(self.delivered),
            "failover_s": round(self.failover_s, 2),
            "grants_lost": len(self.grants_lost),
            "revocations_missed": len(self.revocations_missed()),
            "max_lateness_s": round(max(late), 2) if late else None,
            "unanswered_requests": len(self.unanswered),
            "asked_again_after_try_again": sum(p.try_again for p in self.people),
            "asked_again_after_lost_request": sum(p.lost for p in self.people),
            "taken_back_unconfirmed": sum(p.taken_back for p in self.people),
            "double_credentials": len(self.double_credentials),
            "orphans_after_reconcile": len(self.orphans_after_reconcile),
            "audit_verify_exit": self.audit_verify_rc,
            "outcomes": _count(p.outcome for p in self.people),
        }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def policy_text(people: list[str]) -> str:
    return f"""\
groups:
  askers: {{members: [{", ".join(people)}]}}
  approvers: {{members: [{APPROVER}]}}
defaults:
  requesters: {{groups: [askers]}}
  approvers: {{groups: [approvers], channel: {APPROVAL_CHANNEL}}}
  max_duration: 1h
  request_timeout: 30m
resources:
  cache:
    provider: {{type: redis_acl, url: "${{FAILOVER_CACHE_URL}}"}}
    roles:
      read:
        provider: {{commands: "+@read +ping", keys: "~cache:*"}}
"""


class Run:
    """The people, the approver and the checks, over running :class:`Processes`."""

    def __init__(self, opts: Options, procs: Processes, store: GrantStore) -> None:
        self.opts = opts
        self.procs = procs
        self.store = store
        self.watcher = Watcher(procs.control)
        self.drivers = [
            SlackDriver(
                f"{url}/slack/events", signing_secret=procs.secret, emulator_url=procs.emulator_url
            )
            for url in procs.serve_urls
        ]
        self.rng = random.Random(opts.seed)
        self.killed = asyncio.Event()
        self.killed_at = 0.0
        self.failover_s = 0.0

    async def __aenter__(self) -> Run:
        for d in self.drivers:
            await d.__aenter__()
        self.watcher.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.watcher.stop()
        for d in self.drivers:
            await d.__aexit__(None, None, None)

    async def stream(self, people: list[Person]) -> None:
        tasks = []
        kill_after = -1 if self.opts.kill_at is None else int(len(people) * self.opts.kill_at)
        for n, person in enumerate(people):
            if n == kill_after:
                tasks.append(asyncio.create_task(self._kill_master()))
            tasks.append(asyncio.create_task(self._person(person, n)))
            await asyncio.sleep(1.0 / self.opts.rate_per_s)
        await asyncio.gather(*tasks)

    async def _kill_master(self) -> None:
        group = self.procs.redis
        old = group.master_port()
        assert old is not None
        self.killed_at = time.time()
        await asyncio.to_thread(group.kill_master)
        self.killed.set()
        await asyncio.to_thread(group.wait_for_new_master, old)
        self.failover_s = time.time() - self.killed_at

    async def _person(self, person: Person, n: int) -> None:
        driver = self.drivers[n % len(self.drivers)]
        while person.asks < MAX_ASKS:
            person.asks += 1
            answer = await self._ask(driver, person)
            if answer is None:
                person.answered, person.outcome = False, "unanswered"
                return
            if "try again" in answer:
                person.try_again += 1
                await asyncio.sleep(1.0 + self.rng.random())
                continue
            found = _GRANT_ID.search(answer)
            if found is None:
                person.outcome = "refused: " + answer[:80]
                return
            gid = found.group(0)
            person.grant_ids.append(gid)
            result = await self._approve(gid)
            if result == "lost":
                person.lost += 1
                continue
            if result == "taken_back":
                person.taken_back += 1
                continue
            person.outcome = result
            return
        person.outcome = "gave up"

    async def _ask(self, driver: SlackDriver, person: Person) -> str | None:
        channel, name = ASK_CHANNEL
        url = await driver.response_url(person.user, channel)
        body = driver.payloads.slash_command(
            user_id=person.user,
            user_name=person.user.lower(),
            text=f"request cache read {person.duration_s}s failover drill",
            channel_id=channel,
            channel_name=name,
            command=ids.COMMAND,
            trigger_id=await driver.trigger_id(person.user),
            response_url=url,
        )
        token = url.rsplit("/", 1)[1]
        with suppress(OSError, asyncio.TimeoutError):
            await driver.send(body, FORM_CONTENT_TYPE)
        return await self.watcher.answer(token, timeout_s=ANSWER_TIMEOUT_S)

    async def _status(self, gid: str) -> Status | str | None:
        try:
            grant = await self.store.get(gid)
        except NotFound:
            return None
        except GrantbotError:
            return "unavailable"
        if grant.status is Status.REVOKED and grant.end_reason == NOT_CONFIRMED:
            return "taken_back"
        return grant.status

    async def _approve(self, gid: str) -> str:
        copy = await self.watcher.copy(gid, timeout_s=ANSWER_TIMEOUT_S)
        if copy is None:
            return "lost" if await self._status(gid) is None else "no approval copy"
        driver = self.drivers[self.rng.randrange(len(self.drivers))]
        for _ in range(MAX_CLICKS):
            with suppress(OSError, asyncio.TimeoutError):
                await driver.block_action(
                    APPROVER, ids.APPROVE, message=copy, channel_id=APPROVAL_CHANNEL
                )
            deadline = time.monotonic() + 8.0
            status: Status | str | None = "unavailable"
            while time.monotonic() < deadline:
                status = await self._status(gid)
                if status not in (Status.PENDING, Status.APPROVED, "unavailable"):
                    break
                if status is Status.APPROVED or self.watcher.has_credential(gid):
                    deadline = max(deadline, time.monotonic() + 0.5)
                await asyncio.sleep(0.5)
            if status is None:
                return "lost"
            if status == "taken_back":
                return "taken_back"
            if isinstance(status, Status) and status is not Status.PENDING:
                break
            await asyncio.sleep(0.5 + self.rng.random())
        if await self.watcher.wait_credential(gid, timeout_s=20.0):
            return "credential"
        return f"no credential ({status})"


async def run(opts: Options, *, workdir: Path | None = None) -> Outcome:
    """Run the whole scenario; everything it started is stopped on return."""
    base = Path(workdir or tempfile.mkdtemp(prefix="grantbot-failover-"))
    rng = random.Random(opts.seed)
    people = [
        Person(user=f"U2{i:07d}", duration_s=rng.randint(opts.min_s, opts.max_s))
        for i in range(opts.requests)
    ]
    policy = policy_text([p.user for p in people])
    async with AsyncExitStack() as stack:
        procs = await stack.enter_async_context(
            Processes.running(
                base=base,
                users=[p.user for p in people],
                policy=policy,
                serves=opts.serves,
                approver=APPROVER,
                channels=[ASK_CHANNEL, (APPROVAL_CHANNEL, "access-requests")],
                down_after_ms=opts.down_after_ms,
            )
        )
        store = GrantStore.open(procs.redis.url, keys=procs.keys)
        stack.push_async_callback(store.aclose)
        watch = TargetWatch(procs.target.url)
        watch.start()
        stack.push_async_callback(watch.stop)
        async with Run(opts, procs, store) as scenario:
            await scenario.stream(people)
            delivered = scenario.watcher.credentials()
        expiries = await _expiries(store, delivered)
        lost = [gid for gid in delivered if gid not in expiries]
        last = max(expiries.values(), default=time.time())
        await watch.wait_until(last + scenario.failover_s + 12.0)
        orphans = await procs.reconcile_once()
        verify = await procs.audit_verify()
        return Outcome(
            people=people,
            failover_s=scenario.failover_s,
            killed_at=scenario.killed_at,
            delivered={g: (expiries.get(g, 0.0), watch.gone_at(g)) for g in delivered},
            double_credentials=[g for g, pw in delivered.items() if len(pw) > 1],
            grants_lost=lost,
            orphans_after_reconcile=orphans,
            audit_verify_rc=verify[0],
            audit_verify_out=verify[1],
            serve_logs=procs.logs,
        )
    raise AssertionError("unreachable")


async def _expiries(store: GrantStore, delivered: dict[str, set[str]]) -> dict[str, float]:
    found = await store.read_many(delivered)
    return {gid: g.expires_at for gid, g in found.items() if g.expires_at is not None}
