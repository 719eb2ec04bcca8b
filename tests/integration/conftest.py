"""The integration tests' fixtures, each defined once (Redis, ``keys`` and ``store`` come from
tests/conftest.py).

What a module needs differently is data, not code: it overrides one of the small data
fixtures -- ``bot_options`` (how :func:`running_bot` builds the bot: a policy, environment,
clock, Slack timeouts, extra people), ``pagerduty_setup`` or ``opsgenie_setup`` (what the
on-call emulators hold) -- and the fixture that starts the thing stays here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from slack_sdk.web.async_client import AsyncWebClient

from bot.devtools.opsgenie_emulator import OpsgenieEmulator
from bot.devtools.pagerduty_emulator import PagerDutyEmulator
from bot.devtools.redis_server import RedisServer
from bot.devtools.slack_emulator import SlackEmulator
from bot.oncall import slack_lookup_by_email
from bot.oncall.base import SlackUserByEmail
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from tests.integration.aws_fixtures import MotoServer
from tests.integration.provider_targets import SshCA, start_ssh_ca
from tests.integration.providers_fixtures import PrivateMariaDB, PrivatePostgres
from tests.integration.slack_harness import SlackHarness, running_bot
from tests.integration.support import (
    OG_KEY,
    OG_SCHEDULES,
    PD_ONCALLS,
    PD_TOKEN,
    PD_USERS,
    FakeClock,
)

# -- Slack ------------------------------------------------------------------------------------


@pytest.fixture
def bot_options() -> dict[str, Any]:
    """Keyword options for :func:`running_bot` beyond the test's Redis and key prefix; a
    module overrides this fixture to give its policy, environment, clock or timeouts."""
    return {}


@pytest.fixture
async def slack(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis, bot_options: dict[str, Any]
) -> AsyncIterator[SlackHarness]:
    """The bot assembled as ``grantbot serve`` does, on this test's Redis prefix (its keys
    deleted afterwards), with the Slack emulator and a signing driver."""
    async with running_bot(redis_url=redis_url, prefix=keys.prefix, **bot_options) as harness:
        yield harness


@pytest.fixture
async def emulator() -> AsyncIterator[SlackEmulator]:
    """A Slack emulator on its own (the demo workspace: Alice, Bob, Carol, departed Dave),
    for the Slack parts tested without a bot, or one Slack shared by several bots."""
    async with SlackEmulator() as emu:
        yield emu


@pytest.fixture
def by_email(emulator: SlackEmulator) -> SlackUserByEmail:
    """Slack's real users.lookupByEmail, through slack_sdk, against the emulator."""
    return slack_lookup_by_email(
        AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)
    )


# -- on call ----------------------------------------------------------------------------------


@pytest.fixture
def pagerduty_setup() -> dict[str, Any]:
    """What the PagerDuty emulator holds (its keyword options): Carol on call for PSCHED1."""
    return {"token": PD_TOKEN, "users": PD_USERS, "oncalls": PD_ONCALLS}


@pytest.fixture
async def pd(pagerduty_setup: dict[str, Any]) -> AsyncIterator[PagerDutyEmulator]:
    """PagerDuty's REST API at the wire, holding ``pagerduty_setup``."""
    async with PagerDutyEmulator(**pagerduty_setup) as emu:
        yield emu


@pytest.fixture
def opsgenie_setup() -> dict[str, Any]:
    """What the Opsgenie emulator holds (its keyword options): Carol on call for SRE and DBA."""
    return {"api_key": OG_KEY, "schedules": OG_SCHEDULES}


@pytest.fixture
async def og(opsgenie_setup: dict[str, Any]) -> AsyncIterator[OpsgenieEmulator]:
    """Opsgenie's API at the wire, holding ``opsgenie_setup``."""
    async with OpsgenieEmulator(**opsgenie_setup) as emu:
        yield emu


@pytest.fixture
def clock() -> FakeClock:
    """A clock (seconds) the test moves by hand, e.g. an on-call lookup's monotonic clock."""
    return FakeClock()


# -- targets and processes --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_server() -> Iterator[RedisServer]:
    """A private redis-server: the credential target whose ACL users the redis_acl provider
    issues (never the shared Redis)."""
    with RedisServer(appendonly=False) as server:
        yield server


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """A real AWS API endpoint (``moto_server``, its own process on a loopback port) for the
    whole session; tests create uniquely named roles, users and permission sets on it."""
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL cluster where every login must prove its password (SCRAM)."""
    with PrivatePostgres() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def mariadb() -> Iterator[PrivateMariaDB]:
    """A private MariaDB server: only this module's accounts are on it, and it can stop."""
    with PrivateMariaDB() as server:
        yield server


@pytest.fixture(scope="module")
def ssh_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshCA]:
    """A CA key, an empty KRL and a real sshd trusting both."""
    ca = start_ssh_ca(tmp_path_factory.mktemp("ssh-ca"))
    try:
        yield ca
    finally:
        ca.sshd.stop()


@pytest.fixture
def cli_env(redis_url: str, store: GrantStore) -> dict[str, str]:
    """Environment pointing the CLI at this test's Redis key prefix."""
    return {"REDIS_URL": redis_url, "GRANTBOT_REDIS_PREFIX": store.keys.prefix}
