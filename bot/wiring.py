"""The one place that builds grantbot's parts: for ``grantbot serve`` and the demo, tests and
benchmarks that run the very bot it runs (:func:`assemble`), for the CLI (:func:`open_store`,
:func:`open_service`) and for the scheduler-only worker (:func:`build_revoker`,
:func:`build_scheduler`).

Parts are built in an order, so nothing is wired after construction: the service's context
(store, policy, notifier, directories, on-call, the policy's providers), then the revoker
resolving through those providers and reporting to :class:`~bot.service.RevocationReports`
on that context, then the scheduler over the revoker (its reconciler's orphan sweep listing
the same providers), and last the service, given both. Nothing here starts an embedded Redis
unless asked: a CLI command must not conjure an empty database. Shutdown runs in reverse.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bot.log_throttle import Outage
from bot.pacing import Pacer
from bot.redis_runtime import redis_url_for
from bot.revocation.revoker import DEFAULT_BATCH_SIZE, DEFAULT_MAX_BATCHES, Revoker
from bot.revocation.targets import DEFAULT_REVOKE_TIMEOUT_S
from bot.scheduling.lease import DEFAULT_LEASE_TTL_S
from bot.scheduling.reconciler import DEFAULT_RECONCILE_INTERVAL_S, ProviderInventory
from bot.store.connection import redis_outage as new_redis_outage
from bot.store.grants import GrantStore
from bot.store.keys import Keys

if TYPE_CHECKING:
    # Each builder imports what it builds: the scheduler-only worker loads neither the policy
    # nor the service (30 MB less), the CLI neither APScheduler nor Slack (0.4 s less).
    from aiohttp import web
    from slack_bolt.async_app import AsyncApp

    from bot.announcer import EndAnnouncer
    from bot.config import Settings
    from bot.policy_holder import PolicyHolder
    from bot.ports import (
        ProviderResolver,
        RevocationListener,
    )
    from bot.revocation.retry import RetryPolicy
    from bot.scheduling.scheduler import RevocationScheduler
    from bot.service import GrantService, ServiceContext
    from bot.slack.context import SlackDeps
    from bot.slack.directory import SlackDirectory
    from bot.slack.edge import Edge
    from bot.slack.notifier import SlackNotifier
    from bot.slack.tasks import BackgroundTasks
    from bot.slack.workspace import InstalledWorkspace
    from bot.web import Readiness

#: How long shutdown waits for acked work (issuing, DMs) before cancelling it.
SHUTDOWN_DRAIN_S: Final = 10.0
#: Connections to the Slack API (or the emulator) at once, shared with the on-call sources.
#: Up to 100 post-ack jobs (bot.slack.tasks) each make several calls at once (the approvers'
#: copies; the credential DM while the copies are updated): a smaller pool queues a credential
#: DM behind chat.update calls, so calls meant to overlap run one after another (at 100, 50
#: approval clicks measured two Slack round trips before the DM instead of one). With the
#: Redis pool's 256 this stays well under the usual limit of 1,024 open files.
SLACK_CONNECTIONS: Final = 400


# -- revocation: the revoker and its scheduler --------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationOptions:
    """How the revoker and the scheduler run (serve uses the defaults; the worker of the
    replica tests and benches sets them from its command line)."""

    retry: RetryPolicy | None = None
    revoke_timeout_s: float = DEFAULT_REVOKE_TIMEOUT_S
    batch_size: int = DEFAULT_BATCH_SIZE
    max_batches: int = DEFAULT_MAX_BATCHES
    replica_id: str | None = None
    lease_ttl_s: float = DEFAULT_LEASE_TTL_S
    reconcile_interval_s: float = DEFAULT_RECONCILE_INTERVAL_S


def build_revoker(
    store: GrantStore,
    *,
    resolver: ProviderResolver,
    listener: RevocationListener,
    policy_version: Callable[[], str],
    clock: Callable[[], float] = time.time,
    redis_outage: Outage | None = None,
    options: RevocationOptions = RevocationOptions(),
) -> Revoker:
    """The revoker: it takes access away through ``resolver`` and reports to ``listener``."""
    return Revoker(
        store,
        resolver=resolver,
        listener=listener,
        policy_version=policy_version,
        clock=clock,
        retry=options.retry,
        revoke_timeout_s=options.revoke_timeout_s,
        batch_size=options.batch_size,
        max_batches=options.max_batches,
        redis_outage=redis_outage,
    )


def build_scheduler(
    store: GrantStore,
    revoker: Revoker,
    *,
    schedule_on: str,
    inventory: ProviderInventory | None,
    clock: Callable[[], float] = time.time,
    redis_outage: Outage | None = None,
    options: RevocationOptions = RevocationOptions(),
) -> RevocationScheduler:
    """The scheduler that runs ``revoker``'s jobs, read by APScheduler from the Redis at
    ``schedule_on``; its reconciler looks for access no live grant accounts for at every
    provider ``inventory`` lists. Not started."""
    from bot.scheduling.scheduler import RevocationScheduler

    return RevocationScheduler(
        store,
        revoker,
        redis=schedule_on,
        replica_id=options.replica_id,
        lease_ttl_s=options.lease_ttl_s,
        reconcile_interval_s=options.reconcile_interval_s,
        providers=inventory,
        clock=clock,
        redis_outage=redis_outage,
    )


# -- the core: service, revoker (and in serve the scheduler) ------------------------------------


@dataclass(frozen=True, slots=True)
class Core:
    """The parts that change grants. ``scheduler`` only where revocations run on time."""

    store: GrantStore
    policy: PolicyHolder
    service: GrantService
    revoker: Revoker
    scheduler: RevocationScheduler | None = None


def build_core(
    context: ServiceContext,
    *,
    redis_outage: Outage | None = None,
    schedule_on: str | None = None,
) -> Core:
    """Revoker and service over ``context``, in order (see the module docstring); with
    ``schedule_on`` (the Redis URL APScheduler reads) also the scheduler, which the service
    hands each issued grant's end to and whose reconciler sweeps the service's providers."""
    from bot.service import GrantService, RevocationReports

    store, policy, clock = context.store, context.policy, context.clock
    revoker = build_revoker(
        store,
        resolver=context.providers,
        listener=RevocationReports(context),
        policy_version=lambda: policy.version,
        clock=clock,
        redis_outage=redis_outage,
    )
    scheduler = None
    if schedule_on is not None:
        scheduler = build_scheduler(
            store,
            revoker,
            schedule_on=schedule_on,
            inventory=context.providers.inventory,
            clock=clock,
            redis_outage=redis_outage,
        )
    service = GrantService(context, revoker=revoker, scheduler=scheduler)
    return Core(store=store, policy=policy, service=service, revoker=revoker, scheduler=scheduler)


async def close_core(core: Core) -> None:
    """Drain the revoker, then close providers and the on-call lookup (not the store)."""
    await core.revoker.aclose()
    await core.service.aclose()


# -- the CLI ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[GrantStore]:
    """A GrantStore on the configured (or running embedded) Redis; never starts one."""
    with redis_url_for(settings, start_embedded=False) as url:
        store = GrantStore.open(url, keys=Keys(prefix=settings.redis_prefix))
        try:
            yield store
        finally:
            await store.aclose()


@contextlib.asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[GrantService]:
    """The service with revocation wired, for CLI commands that end grants; closed (revoker
    drained, providers closed) on exit."""
    from bot.policy_holder import PolicyHolder
    from bot.service import ServiceContext

    async with open_store(settings) as store:
        policy = PolicyHolder.load(settings.policy_path)
        core = build_core(ServiceContext(store=store, policy=policy))
        try:
            yield core.service
        finally:
            await close_core(core)


# -- serve --------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Bot:
    """The assembled bot. ``app`` is the Bolt app; ``edge`` the door in front of it (HTTP and
    Socket Mode); ``workspace`` the one it serves; ``web_app`` the aiohttp application."""

    settings: Settings
    store: GrantStore
    policy: PolicyHolder
    service: GrantService
    scheduler: RevocationScheduler
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
    oncall_timeout_s: float | None = None,
    slack_timeout_s: float | None = None,
    slack_retry_backoff_s: float | None = None,
    redis_outage: Outage | None = None,
) -> AsyncIterator[Bot]:
    """Build the whole bot on ``redis_url``; take it apart on exit (see module docstring).

    Raises PolicyError when the policy file is invalid (naming every issue) before anything
    is started. ``http_events`` False leaves /slack/events out (Socket Mode). The on-call
    lookup follows the policy's ``oncall:`` schedules (tokens from ``environ``), gives each
    remote source ``oncall_timeout_s`` (default: bot.oncall.cached's) and maps emails to
    Slack users with users.lookupByEmail. Each Slack Web API attempt gets
    ``slack_timeout_s``; a 5xx or a dropped connection is retried after
    ``slack_retry_backoff_s`` (then doubling); by default bot.slack.app's API_TIMEOUT_S and
    bot.slack.retry's BACKOFF_S. ``redis_outage`` is the one voice of every loop about Redis
    being down (default: a new :func:`bot.store.connection.redis_outage`).
    """
    import aiohttp

    from bot.announcer import EndAnnouncer, consumer_name
    from bot.audit.duties import audit_duties, plan_duties
    from bot.notify import WithoutEnds
    from bot.oncall.cached import DEFAULT_TIMEOUT_S as DEFAULT_ONCALL_TIMEOUT_S
    from bot.oncall.lookup import PolicyOnCallLookup, slack_lookup_by_email
    from bot.policy_holder import PolicyHolder, audit_policy_loaded
    from bot.service import CredentialAgain, PolicyProviders, ServiceContext
    from bot.slack.app import API_TIMEOUT_S, build_client, create_app
    from bot.slack.bundle_notifier import BundleNotifier
    from bot.slack.context import SlackDeps
    from bot.slack.directory import SlackDirectory
    from bot.slack.edge import Edge
    from bot.slack.retry import BACKOFF_S
    from bot.slack.tasks import BackgroundTasks
    from bot.slack.workspace import InstalledWorkspace
    from bot.sweeper import timekeeping
    from bot.web import Readiness, build_web_app

    tasks = BackgroundTasks()
    outage = redis_outage or new_redis_outage()
    # The revocation path's loops give way to Slack work while people wait on it. (A client
    # only: nothing connects before the policy and the settings are known to be good.)
    store = GrantStore.open(
        redis_url,
        keys=Keys(prefix=settings.redis_prefix),
        pacer=Pacer(tasks.busy),
        max_connections=256,
    )
    try:  # a reload may not orphan live grants
        policy = PolicyHolder.load(settings.policy_path, in_use=store.live_rules)
        duties = plan_duties(settings)
    except BaseException:
        await store.aclose()
        raise
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SLACK_CONNECTIONS),
        timeout=aiohttp.ClientTimeout(total=30),
    )
    core: Core | None = None
    try:
        client = build_client(
            token=bot_token,
            base_url=settings.slack_api_url,
            session=session,
            timeout_s=API_TIMEOUT_S if slack_timeout_s is None else slack_timeout_s,
            retry_backoff_s=BACKOFF_S if slack_retry_backoff_s is None else slack_retry_backoff_s,
        )
        directory = SlackDirectory(client)
        # Built before the notifier: a bundle's one DM issues its items again through them.
        providers = PolicyProviders(
            store=store, policy=policy, people=directory, clock=clock, environ=environ
        )
        # A SlackNotifier that also knows bundles (issue 13).
        notifier = BundleNotifier(
            bundles=store.bundles,
            reissue=CredentialAgain(providers, clock=clock),
            client=client,
            grants=store,
            refs=store.message_refs(),
            audit=store.audit,
            policy=policy,
            directory=directory,
            clock=clock,
        )
        context = ServiceContext(
            store=store,
            policy=policy,
            # Ends reach Slack once, from the audit stream, wherever they were made.
            notifier=WithoutEnds(notifier),
            usergroups=directory,
            oncall=PolicyOnCallLookup(
                policy,
                env=environ if environ is not None else os.environ,
                lookup_slack_user_by_email=slack_lookup_by_email(client),
                http=session,
                timeout_s=(
                    DEFAULT_ONCALL_TIMEOUT_S if oncall_timeout_s is None else oncall_timeout_s
                ),
            ),
            people=directory,
            clock=clock,
            environ=environ,
            providers=providers,
        )
        core = build_core(context, redis_outage=outage, schedule_on=redis_url)
        announcer = EndAnnouncer(
            store.audit_feed(consumer=consumer_name()),
            store=store,
            notifier=notifier,
            redis_outage=outage,
            pacer=store.pacer,
        )
        deps = SlackDeps(
            service=core.service,
            directory=directory,
            tasks=tasks,
            dedupe=store.dedupe(redis_outage=outage),
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
        assert core.scheduler is not None  # built with schedule_on
        bot = Bot(
            settings=settings,
            store=store,
            policy=policy,
            service=core.service,
            scheduler=core.scheduler,
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
        if install_reload_triggers:
            policy.install_reload_triggers(audit=store.audit, clock=clock)
        async with (
            timekeeping(
                core.service, core.scheduler, core.revoker, redis_outage=outage
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
        if core is not None:
            await core.service.aclose()
        await session.close()
        await store.aclose()
