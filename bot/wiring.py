"""The one place that builds grantbot's parts: for ``grantbot serve`` and the demo, tests and
benchmarks that run the very bot it runs (:func:`assemble`) and for the CLI (:func:`open_store`,
:func:`open_service`); the revoker and its scheduler are built by bot/revocation/build.py
(also the scheduler-only worker's).

Parts are built in an order, so nothing is wired after construction: the service's context
(store, policy, notifier, directories, on-call, the policy's providers), then the revoker
resolving through those providers and reporting to :class:`~bot.service.RevocationReports`
on that context, then the scheduler over the revoker (its reconciler's orphan sweep listing
the same providers), then the lifecycle's jobs (poking that scheduler), reminders and start
book (bot/lifecycle), then the service, given the scheduler (wrapped so each revocation
arms its reminder), the revoker and the start book, and last the lifecycle's runner, which
starts grants through the service and is registered with the scheduler before it starts.
Nothing here starts an embedded Redis unless asked: a CLI command must not conjure an empty
database. Shutdown runs in reverse.
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
from bot.revocation.build import build_revoker, build_scheduler
from bot.revocation.revoker import Revoker
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
    from bot.lifecycle.runner import Lifecycle, LifecycleNotices
    from bot.policy_holder import PolicyHolder
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


# -- the core: service, revoker (and in serve the scheduler) ------------------------------------


@dataclass(frozen=True, slots=True)
class Core:
    """The parts that change grants. ``scheduler`` only where revocations run on time (and
    ``lifecycle``'s jobs with them)."""

    store: GrantStore
    policy: PolicyHolder
    service: GrantService
    revoker: Revoker
    lifecycle: Lifecycle
    scheduler: RevocationScheduler | None = None


def build_core(
    context: ServiceContext,
    *,
    redis_outage: Outage | None = None,
    schedule_on: str | None = None,
    lifecycle_notices: LifecycleNotices | None = None,
) -> Core:
    """Revoker, lifecycle and service over ``context``, in order (see the module docstring);
    with ``schedule_on`` (the Redis URL APScheduler reads) also the scheduler, which the
    service hands each issued grant's end to (and its reminder, through ``WithLifecycle``),
    whose reconciler sweeps the service's providers, and which runs the lifecycle's reminder
    and start jobs. Reminders and the scheduled notice go to ``lifecycle_notices`` (None:
    only logged, as in the CLI)."""
    from bot.lifecycle.reminders import Reminders
    from bot.lifecycle.runner import Lifecycle, WithLifecycle
    from bot.lifecycle.starts import ScheduledStarts, StartBook
    from bot.service import GrantService, RevocationReports

    store, policy, clock = context.store, context.policy, context.clock
    reports = RevocationReports(context)
    revoker = build_revoker(
        store,
        resolver=context.providers,
        listener=reports,
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
    jobs = store.lifecycle_jobs(on_put=None if scheduler is None else scheduler.poke)
    reminders = Reminders(
        store=store, jobs=jobs, policy=policy, notices=lifecycle_notices, clock=clock
    )
    book = StartBook(
        store=store,
        jobs=jobs,
        ended=reports.on_ended,
        policy_version=lambda: policy.version,
        notices=lifecycle_notices,
        clock=clock,
    )
    service = GrantService(
        context,
        revoker=revoker,
        scheduler=None
        if scheduler is None
        else WithLifecycle(scheduler, reminders=reminders, jobs=jobs),
        starts=book,
    )
    # A start issues through the service, which schedules on this scheduler: so the
    # lifecycle comes last, and is registered with the scheduler before it starts.
    lifecycle = Lifecycle(
        reminders=reminders, starts=ScheduledStarts(book, activate=service.activate), jobs=jobs
    )
    if scheduler is not None and schedule_on is not None:
        lifecycle.attach(scheduler, redis_url=schedule_on, keys=store.keys)
    return Core(
        store=store,
        policy=policy,
        service=service,
        revoker=revoker,
        lifecycle=lifecycle,
        scheduler=scheduler,
    )


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
    lifecycle: Lifecycle
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
    from bot.api.install import install_pipelines, pipeline_notifier
    from bot.audit.duties import audit_duties, plan_duties
    from bot.oncall.cached import DEFAULT_TIMEOUT_S as DEFAULT_ONCALL_TIMEOUT_S
    from bot.oncall.lookup import PolicyOnCallLookup, slack_lookup_by_email
    from bot.policy_holder import PolicyHolder, audit_policy_loaded
    from bot.service import CredentialAgain, PolicyProviders, ServiceContext
    from bot.slack.app import API_TIMEOUT_S, build_client, create_app
    from bot.slack.bundle_notifier import BundleNotifier
    from bot.slack.context import SlackDeps
    from bot.slack.directory import SlackDirectory
    from bot.slack.edge import Edge
    from bot.slack.reminder_buttons import ReminderButtons
    from bot.slack.reminders import FollowingReminders, SlackLifecycleNotices
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
        pacer=Pacer(tasks.busy, calm=tasks.calm),
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
        lifecycle_notices = SlackLifecycleNotices(
            client=client, refs=store.message_refs(), clock=clock
        )
        context = ServiceContext(
            store=store,
            policy=policy,
            # Ends reach Slack once, from the audit stream, wherever they were made;
            # reminders show what became of an extension asked from them; machine clients'
            # credentials are sealed for the pipelines API, never DMed.
            notifier=pipeline_notifier(
                FollowingReminders(notifier, lifecycle_notices), store=store, clock=clock
            ),
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
        core = build_core(
            context,
            redis_outage=outage,
            schedule_on=redis_url,
            lifecycle_notices=lifecycle_notices,
        )
        announcer = EndAnnouncer(
            store.audit_feed(consumer=consumer_name()),
            store=store,
            notifier=notifier,
            redis_outage=outage,
            pacer=store.pacer,
        )
        deps = SlackDeps(
            reminders=ReminderButtons(
                service=core.service,
                offers=core.lifecycle.reminders,
                notices=lifecycle_notices,
                clock=clock,
            ),
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
        install_pipelines(web_app, service=core.service, store=store, environ=environ, clock=clock)
        assert core.scheduler is not None  # built with schedule_on
        bot = Bot(
            settings=settings,
            store=store,
            policy=policy,
            service=core.service,
            scheduler=core.scheduler,
            lifecycle=core.lifecycle,
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
