"""``grantbot serve``: assemble every part, serve Slack over HTTP or Socket Mode, shut down
cleanly on SIGTERM / SIGINT.

:func:`assemble` builds the running bot (Redis client, store, policy with reload triggers,
service, Slack client, notifier, user-group directory, revocation scheduler, Bolt app) and
takes it apart again in reverse order; :func:`serve` adds the listener and the signals. The
demo, the in-process tests and the benchmark use :func:`assemble` too, so they run the very
bot that ``serve`` runs.

Shutdown order: stop taking requests, let acked work finish (bounded), stop the scheduler,
close providers, the Slack session and Redis, stop the embedded redis-server if we started
one. Nothing is lost by stopping: grants and their revocation schedule live in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sized
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.aio import cancel_and_wait
from bot.announcer import EndAnnouncer, consumer_name
from bot.audit.duties import audit_duties, plan_duties
from bot.config import Settings
from bot.errors import ConfigError, SlackError
from bot.log_throttle import Outage, Throttle
from bot.notify import WithoutEnds
from bot.oncall.cached import DEFAULT_TIMEOUT_S as DEFAULT_ONCALL_TIMEOUT_S
from bot.oncall.lookup import PolicyOnCallLookup, slack_lookup_by_email
from bot.pacing import Pacer
from bot.policy_holder import PolicyHolder, audit_policy_loaded
from bot.redis_runtime import redis_url_for
from bot.revocation.revoker import Revoker
from bot.scheduling.scheduler import RevocationScheduler
from bot.service import GrantService
from bot.slack.app import API_TIMEOUT_S, build_client, create_app
from bot.slack.context import SlackDeps
from bot.slack.directory import SlackDirectory
from bot.slack.edge import Edge, EdgeSocketModeHandler
from bot.slack.notifier import SlackNotifier
from bot.slack.retry import BACKOFF_S
from bot.slack.tasks import BackgroundTasks
from bot.slack.workspace import InstalledWorkspace
from bot.store.connection import is_unavailable, unavailable_cause
from bot.store.connection import redis_outage as new_redis_outage
from bot.store.dedupe import Dedupe
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from bot.store.message_refs import MessageRefs
from bot.web import Readiness, build_web_app

log = logging.getLogger(__name__)

#: How often pending requests past their request_timeout are lapsed, and those past an
#: escalation tier's ``after`` escalated.
TIMEOUT_SWEEP_INTERVAL_S: Final = 5.0
#: How long shutdown waits for acked work (issuing, DMs) before cancelling it.
SHUTDOWN_DRAIN_S: Final = 10.0
#: How often a failed auth.test is retried (readiness).
SLACK_RECHECK_INTERVAL_S: Final = 15.0
#: Connections to the Slack API (or the emulator) at once, shared with the on-call sources.
#: Up to 100 post-ack jobs (bot.slack.tasks) each make several calls at once (the approvers'
#: copies; the credential DM while the copies are updated): a smaller pool queues a credential
#: DM behind chat.update calls, so calls meant to overlap run one after another (at 100, 50
#: approval clicks measured two Slack round trips before the DM instead of one). With the
#: Redis pool's 256 this stays well under the usual limit of 1,024 open files.
SLACK_CONNECTIONS: Final = 400
#: The longest a request waits for PagerDuty or Opsgenie before it falls back to approvers.
ONCALL_TIMEOUT_S: Final = DEFAULT_ONCALL_TIMEOUT_S


@dataclass(slots=True, kw_only=True)
class Bot:
    """The assembled bot. ``app`` is the Bolt app; ``edge`` the door in front of it (HTTP and
    Socket Mode); ``workspace`` the one it serves; ``web_app`` the aiohttp application."""

    settings: Settings
    store: GrantStore
    policy: PolicyHolder
    service: GrantService
    notifier: SlackNotifier
    directory: SlackDirectory
    deps: SlackDeps
    app: AsyncApp
    edge: Edge
    workspace: InstalledWorkspace
    web_app: web.Application
    readiness: Readiness
    tasks: BackgroundTasks
    redis_outage: Outage
    announcer: EndAnnouncer


async def check_slack(bot: Bot) -> None:
    """auth.test: the token works and the API answers, and which workspace it is for (the
    one whose deliveries are admitted, see bot.slack.workspace). Sets readiness either way."""
    try:
        resp = await bot.app.client.auth_test()
        conflict = bot.workspace.learn(
            team_id=resp.get("team_id"),
            enterprise_id=resp.get("enterprise_id"),
            org_wide=bool(resp.get("is_enterprise_install")),
        )
        if conflict is not None:
            bot.readiness.slack_ok = False
            bot.readiness.slack_detail = f"wrong workspace: {conflict}"
            log.error("slack auth.test: %s; every Slack request will be refused", conflict)
            return
        bot.readiness.slack_ok = True
        bot.readiness.slack_detail = "ok"
        log.info(
            "slack auth.test passed",
            extra={
                "team": resp.get("team"),
                "bot": resp.get("user"),
                "workspace": str(bot.workspace.known),
            },
        )
    except SlackError as e:
        bot.readiness.slack_ok = False
        bot.readiness.slack_detail = f"auth.test failed: {e.code}"
        log.error("slack auth.test failed: %s", e.code)


async def _keep_checking_slack(bot: Bot, *, interval_s: float) -> None:
    """Until auth.test passes (Slack was down or the token was wrong at start), retry it so
    /readyz turns ready on its own. A token of another workspace than SLACK_TEAM_ID names
    is not retried: only a restart with corrected settings can mend that."""
    while not bot.readiness.slack_ok and bot.workspace.conflict is None:
        await asyncio.sleep(interval_s)
        await check_slack(bot)


async def _sweep_timeouts(service: GrantService, *, interval_s: float, outage: Outage) -> None:
    """Lapse pending requests past their deadline and escalate those past a tier's
    ``after``, forever (safe on every replica: both are claimed atomically in Redis)."""
    while True:
        await sweep_once(service, outage=outage)
        await asyncio.sleep(interval_s)


#: One line a minute per sweep step that keeps failing for a reason other than Redis.
_SWEEP_ERRORS: Final = Throttle(log, level=logging.ERROR)


async def sweep_once(service: GrantService, *, outage: Outage) -> None:
    """One pass of the time-out / stuck-approval / escalation sweep. Redis being down is
    told by ``outage`` (and ends the pass: every step needs it); any other failure of a step
    is logged, with its traceback at most once a minute, and the next step still runs."""
    steps: tuple[tuple[str, Callable[[], Awaitable[Sized | int]], str, int], ...] = (
        (
            "timing out pending requests",
            service.time_out_due,
            "lapsed %d pending request(s)",
            logging.INFO,
        ),
        (
            "closing stuck approved grants",
            service.fail_stuck_approved,
            "closed %d approved grant(s) whose issuing never finished",
            logging.WARNING,
        ),
        (
            "escalating pending requests",
            service.escalate_due,
            "escalated %d pending request(s)",
            logging.INFO,
        ),
        (
            "provider housekeeping",  # e.g. STS deny policies past their sessions' expiry
            service.housekeeping,
            "removed %d leftover(s) at provider targets",
            logging.INFO,
        ),
    )
    for what, step, done_msg, level in steps:
        try:
            done = await step()
        except Exception as e:
            if is_unavailable(e):
                outage.failed(unavailable_cause(e))
                return
            _SWEEP_ERRORS.log(what, "%s failed: %s; will retry", what, type(e).__name__, exc_info=e)
            continue
        outage.succeeded()
        count = done if isinstance(done, int) else len(done)
        if count:
            log.log(level, done_msg, count)


@contextlib.asynccontextmanager
async def _timekeeping(
    service: GrantService,
    store: GrantStore,
    *,
    redis_url: str,
    clock: Callable[[], float],
    redis_outage: Outage,
) -> AsyncIterator[RevocationScheduler]:
    """Revocation on time (the revoker and its scheduler, wired into ``service``) and the
    pending-request time-out sweep, for as long as the context is open. All of them tell
    ``redis_outage`` when Redis fails them."""
    revoker = Revoker(
        store,
        resolver=service,
        listener=service,
        policy_version=lambda: service.policy.version,
        clock=clock,
        redis_outage=redis_outage,
    )
    scheduler = RevocationScheduler(
        store, revoker, redis=redis_url, clock=clock, redis_outage=redis_outage
    )
    service.revoker = revoker
    service.scheduler = scheduler
    await scheduler.start()
    sweep = asyncio.get_running_loop().create_task(
        _sweep_timeouts(service, interval_s=TIMEOUT_SWEEP_INTERVAL_S, outage=redis_outage),
        name="timeout-sweep",
    )
    try:
        yield scheduler
    finally:
        await cancel_and_wait(sweep)
        await scheduler.stop()
        await revoker.aclose()


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings,
    *,
    redis_url: str,
    bot_token: str,
    signing_secret: str,
    clock: Callable[[], float] = time.time,
    environ: Mapping[str, str] | None = None,
    http_events: bool = True,
    install_reload_triggers: bool = True,
    oncall_timeout_s: float = ONCALL_TIMEOUT_S,
    slack_timeout_s: float = API_TIMEOUT_S,
    slack_retry_backoff_s: float = BACKOFF_S,
    redis_outage: Outage | None = None,
) -> AsyncIterator[Bot]:
    """Build the whole bot on ``redis_url``; take it apart on exit (see module docstring).

    Raises PolicyError when the policy file is invalid (naming every issue) before anything
    is started. ``http_events`` False leaves /slack/events out (Socket Mode). The on-call
    lookup follows the policy's ``oncall:`` schedules (tokens from ``environ``), gives each
    remote source ``oncall_timeout_s`` and maps emails to Slack users with
    users.lookupByEmail. Each Slack Web API attempt gets ``slack_timeout_s``; a 5xx or a
    dropped connection is retried after ``slack_retry_backoff_s`` (then doubling).
    ``redis_outage`` is the one voice of every loop about Redis being down (default: a new
    :func:`bot.store.connection.redis_outage`).
    """
    policy = PolicyHolder.load(settings.policy_path)
    duties = plan_duties(settings)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SLACK_CONNECTIONS),
        timeout=aiohttp.ClientTimeout(total=30),
    )
    service: GrantService | None = None
    tasks = BackgroundTasks()
    outage = redis_outage or new_redis_outage()
    # The revocation path's loops give way to Slack work while people wait on it.
    store = GrantStore.open(
        redis_url,
        keys=Keys(prefix=settings.redis_prefix),
        pacer=Pacer(tasks.busy, calm=tasks.calm),
        max_connections=256,
    )
    try:
        client = build_client(
            token=bot_token,
            base_url=settings.slack_api_url,
            session=session,
            timeout_s=slack_timeout_s,
            retry_backoff_s=slack_retry_backoff_s,
        )
        directory = SlackDirectory(client)
        oncall = PolicyOnCallLookup(
            policy,
            env=environ if environ is not None else os.environ,
            lookup_slack_user_by_email=slack_lookup_by_email(client),
            http=session,
            timeout_s=oncall_timeout_s,
        )
        service = GrantService(
            store=store,
            policy=policy,
            usergroups=directory,
            oncall=oncall,
            people=directory,
            clock=clock,
            environ=environ,
        )
        notifier = SlackNotifier(
            client=client,
            grants=store,
            refs=MessageRefs(store.redis, keys=store.keys),
            audit=store.audit,
            policy=policy,
            directory=directory,
            clock=clock,
        )
        # Ends reach Slack once, from the audit stream, wherever they were made.
        service.notifier = WithoutEnds(notifier)
        announcer = EndAnnouncer(
            store.audit_feed(consumer=consumer_name()),
            store=store,
            notifier=notifier,
            redis_outage=outage,
            pacer=store.pacer,
        )
        deps = SlackDeps(
            service=service,
            directory=directory,
            tasks=tasks,
            dedupe=Dedupe(store.redis, keys=store.keys, redis_outage=outage),
            notifier=notifier,
            clock=clock,
        )
        app = create_app(deps=deps, client=client, signing_secret=signing_secret)
        workspace = InstalledWorkspace(
            team_id=settings.slack_team_id, enterprise_id=settings.slack_enterprise_id
        )
        edge = Edge(app, signing_secret=signing_secret or None, workspace=workspace)
        readiness = Readiness(store=store, policy=policy, redis_outage=outage)
        web_app = build_web_app(edge if http_events else None, readiness=readiness, store=store)
        bot = Bot(
            settings=settings,
            store=store,
            policy=policy,
            service=service,
            notifier=notifier,
            directory=directory,
            deps=deps,
            app=app,
            edge=edge,
            workspace=workspace,
            web_app=web_app,
            readiness=readiness,
            tasks=tasks,
            redis_outage=outage,
            announcer=announcer,
        )
        policy.in_use = store.live_rules  # a reload may not orphan live grants
        if install_reload_triggers:
            policy.install_reload_triggers(audit=store.audit, clock=clock)
        async with (
            _timekeeping(
                service, store, redis_url=redis_url, clock=clock, redis_outage=outage
            ) as scheduler,
            audit_duties(duties, store, leader=lambda: scheduler.is_leader, clock=clock),
        ):
            await audit_policy_loaded(store.audit, policy, now=clock())
            announcer.start()
            try:
                yield bot
            finally:
                await tasks.drain(timeout_s=SHUTDOWN_DRAIN_S)
                await announcer.stop()
    finally:
        await tasks.drain(timeout_s=1.0)
        await policy.aclose()
        if service is not None:
            await service.aclose()
        await session.close()
        await store.aclose()


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    log.info("stopping")


#: What ``grantbot serve`` says when it has no REDIS_URL and was not given ``--dev``.
NO_REDIS_URL: Final = (
    "REDIS_URL is not set: grantbot serve keeps every grant, revocation and audit entry in "
    "Redis and needs one that outlives it (redis://, rediss:// or redis+sentinel://); to try "
    "grantbot locally run `grantbot demo` (or `grantbot serve --dev` for an embedded Redis)"
)


async def serve(settings: Settings, *, socket_mode: bool, dev: bool = False) -> None:
    """Run the bot until SIGTERM or SIGINT.

    Without REDIS_URL it refuses to start (ConfigError, :data:`NO_REDIS_URL`) unless ``dev``,
    which uses localhost:6379 or an embedded redis-server, as the demo does.

    HTTP mode needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET; Socket Mode (``socket_mode``,
    or SLACK_APP_TOKEN set) needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN. A missing one is a
    ConfigError naming it, raised before anything starts. /healthz and /readyz are served
    on GRANTBOT_HOST:GRANTBOT_PORT in both modes.
    """
    use_socket = socket_mode or settings.slack_app_token is not None
    if use_socket:
        bot_token = _require(settings.slack_bot_token, "SLACK_BOT_TOKEN")
        app_token = settings.require_app_token()
        signing_secret = (
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else ""
        )
    else:
        bot_token, signing_secret = settings.require_slack_http()
        app_token = ""
    if not settings.redis_url and not dev:
        raise ConfigError(NO_REDIS_URL)
    with redis_url_for(settings, start_embedded=True) as redis_url:
        async with assemble(
            settings,
            redis_url=redis_url,
            bot_token=bot_token,
            signing_secret=signing_secret,
            http_events=not use_socket,
        ) as bot:
            await check_slack(bot)
            # Everything built so far lives as long as the process: keep it out of the
            # cyclic GC's way, so collections stay short and do not stall acks.
            gc.collect()
            gc.freeze()
            runner = web.AppRunner(bot.web_app, access_log=None, shutdown_timeout=5.0)
            await runner.setup()
            recheck = asyncio.get_running_loop().create_task(
                _keep_checking_slack(bot, interval_s=SLACK_RECHECK_INTERVAL_S), name="auth-test"
            )
            socket_handler = None
            try:
                site = web.TCPSite(runner, settings.host, settings.port)
                await site.start()
                log.info(
                    "grantbot serving",
                    extra={
                        "mode": "socket" if use_socket else "http",
                        "address": f"http://{settings.host}:{settings.port}",
                        "policy_version": bot.policy.version[:12],
                    },
                )
                if use_socket:
                    socket_handler = EdgeSocketModeHandler(bot.edge, app_token)
                    await socket_handler.connect_async()  # type: ignore[no-untyped-call]
                await _wait_for_stop()
            finally:
                await cancel_and_wait(recheck)
                if socket_handler is not None:
                    await socket_handler.close_async()  # type: ignore[no-untyped-call]
                await runner.cleanup()


def _require(value: Any, name: str) -> str:
    secret = value.get_secret_value() if value is not None else ""
    if not secret:
        raise ConfigError(f"{name} is not set")
    return str(secret)
