"""The provider contract (bot/providers/base.py), the same tests for every provider, each
against its real target through a harness (tests/integration/provider_targets.py).

Targets: noop (none), postgres (a private SCRAM cluster), mysql (a private MariaDB server),
redis_acl (a private redis-server), ssh_cert (a CA, its KRL and a real sshd), webhook (a
receiver that grants access on signed events), aws_sts and aws_identity_center (moto_server;
the session's, or the test's own where the test stops it). Private servers, so what a
provider finds there is only this module's and the target can really go down.

Not every test applies to every provider: noop has no target, so nothing but revoke ends its
access and it cannot be down; only postgres, mysql and redis_acl have sessions a revoke must
end (an SSH certificate's sessions belong to the hosts, the webhook's and AWS's to services
grantbot does not see). Provider-specific behaviour is tested in each provider's own module.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from _pytest.mark import ParameterSet

from bot.errors import TargetUnavailable
from bot.store.keys import Keys
from tests.integration.aws_fixtures import MotoServer
from tests.integration.provider_targets import (
    IdentityCenterTarget,
    MysqlTarget,
    NoopTarget,
    PostgresTarget,
    RedisAclTarget,
    SshCertTarget,
    StsTarget,
    Target,
    WebhookTarget,
    aws_target,
    mysql_target,
    noop_target,
    postgres_target,
    redis_acl_target,
    ssh_cert_target,
    webhook_target,
)
from tests.integration.providers_fixtures import assert_secrets_not_logged
from tests.integration.support import redis_text

#: Every provider, with what its target needs from the machine (tests/system.py).
HARNESSES: dict[type[Target], tuple[str, ...]] = {
    NoopTarget: (),
    PostgresTarget: ("postgres",),
    MysqlTarget: ("mariadbd",),
    RedisAclTarget: (),
    SshCertTarget: ("sshd", "ssh"),
    WebhookTarget: (),
    StsTarget: (),
    IdentityCenterTarget: (),
}


def providers(where: Callable[[type[Target]], bool] = lambda harness: True) -> list[ParameterSet]:
    """The providers whose harness ``where`` accepts, as parameters of the ``target``."""
    return [
        pytest.param(harness.kind, id=harness.kind, marks=pytest.mark.needs(*needs))
        for harness, needs in HARNESSES.items()
        if where(harness)
    ]


EVERY = providers()
WITH_A_TARGET = providers(lambda harness: harness.has_target)
WITH_SESSIONS = providers(lambda harness: harness.has_sessions)


@pytest.fixture
def own_moto() -> Iterator[MotoServer]:
    """A moto_server of the test's own, for a test that stops and restarts it: moto forgets
    everything when stopped, and gives the same ids again only to the same calls from its
    start (see aws_fixtures.py)."""
    with MotoServer() as server:
        yield server


@pytest.fixture
async def target(
    request: pytest.FixtureRequest, redis_client: aioredis.Redis, keys: Keys, tmp_path: Path
) -> AsyncIterator[Target]:
    """The harness of the provider named by the test's parameter, on its real target."""
    kind: str = request.param
    built: contextlib.AbstractAsyncContextManager[Target]
    if kind == "noop":
        built = noop_target()
    elif kind == "postgres":
        cluster = request.getfixturevalue("pg_cluster")
        built = postgres_target(cluster.dsn, cluster=cluster)
    elif kind == "mysql":
        server = request.getfixturevalue("mariadb")
        built = mysql_target(server.dsn, server=server)
    elif kind == "redis_acl":
        built = redis_acl_target(request.getfixturevalue("cache_server"))
    elif kind == "ssh_cert":
        built = ssh_cert_target(request.getfixturevalue("ssh_ca"), tmp_path)
    elif kind == "webhook":
        built = webhook_target()
    else:
        stops = request.node.get_closest_marker("stops_target") is not None
        moto = request.getfixturevalue("own_moto" if stops else "moto_server")
        built = aws_target(kind, moto, redis_client, keys)
    async with built as harness:
        yield harness


@pytest.mark.parametrize("target", EVERY, indirect=True)
async def test_issued_access_works_at_the_target_and_the_provider_knows_it(
    target: Target,
) -> None:
    """Issue gives access the target honours; check is true, live_grant_ids lists the grant
    and the credential lasts into the future."""
    ctx = target.ctx()
    cred = await target.issue(ctx)
    assert await target.has_access(ctx)
    assert await target.held_at_target(ctx)
    assert await target.provider.check(ctx)
    assert ctx.grant_id in await target.provider.live_grant_ids()
    assert cred.expires_at > time.time()


@pytest.mark.parametrize("target", EVERY, indirect=True)
async def test_revoke_ends_access_and_revoking_twice_or_unissued_succeeds(
    target: Target,
) -> None:
    """Revoke takes the access away at the target; a second revoke, and one for a grant
    never issued, are success and change nothing."""
    ctx = target.ctx()
    await target.issue(ctx)
    await target.provider.revoke(ctx)
    assert not await target.has_access(ctx)
    assert await target.held_at_target(ctx) == []
    assert not await target.provider.check(ctx)
    assert ctx.grant_id not in await target.provider.live_grant_ids()
    await target.provider.revoke(ctx)
    assert not await target.has_access(ctx)
    assert await target.held_at_target(ctx) == []
    await target.provider.revoke(target.ctx())


@pytest.mark.parametrize("target", WITH_A_TARGET, indirect=True)
async def test_revoke_after_the_target_ended_the_access_is_success(target: Target) -> None:
    """When the target has already ended the access (its own expiry passed, or its
    administrator removed it), revoke succeeds, twice too, and nothing of the grant is left:
    not at the target, not live, not checking true."""
    ctx = target.ctx()
    await target.issue(ctx)
    await target.expire_at_target(ctx)
    await target.provider.revoke(ctx)
    assert await target.held_at_target(ctx) == []
    assert ctx.grant_id not in await target.provider.live_grant_ids()
    assert not await target.provider.check(ctx)
    await target.provider.revoke(ctx)
    assert await target.held_at_target(ctx) == []


@pytest.mark.parametrize("target", EVERY, indirect=True)
async def test_overlapping_grants_of_one_user_are_independent(target: Target) -> None:
    """Two grants of the same user and role (each its own login, where the target does not
    share one assignment between them): revoking one leaves the other working, and ending
    both ends the access."""
    first, second = target.ctx(user="U0SAME"), target.ctx(user="U0SAME")
    cred1 = await target.issue(first)
    cred2 = await target.issue(second)
    if not target.shares_access:
        assert cred1.ref != cred2.ref
    await target.provider.revoke(first)
    assert await target.has_access(second)
    if not target.shares_access:
        assert not await target.has_access(first)
    assert await target.provider.check(second)
    assert not await target.provider.check(first)
    live = await target.provider.live_grant_ids()
    assert second.grant_id in live and first.grant_id not in live
    await target.provider.revoke(second)
    assert not await target.has_access(second)


@pytest.mark.parametrize("target", WITH_SESSIONS, indirect=True)
async def test_revoke_ends_the_grants_open_sessions(target: Target) -> None:
    """A session opened with the credential (and using it) is ended by the revoke, and the
    credential no longer opens one."""
    ctx = target.ctx()
    await target.issue(ctx)
    session = await target.open_session(ctx)
    try:
        assert await session.alive()
        await target.provider.revoke(ctx)
        assert not await session.alive()
    finally:
        await session.close()
    assert not await target.has_access(ctx)


@pytest.mark.parametrize("target", EVERY, indirect=True)
async def test_live_grant_ids_sees_what_it_issued_and_nothing_else(target: Target) -> None:
    """Access made at the target by someone else is never listed, and revoking every grant
    of grantbot's leaves it untouched."""
    still_there = await target.foreign_access()
    ctx = target.ctx()
    await target.issue(ctx)
    assert await target.provider.live_grant_ids() == {ctx.grant_id}
    await target.provider.revoke(ctx)
    assert await target.provider.live_grant_ids() == set()
    assert await still_there()


@pytest.mark.stops_target
@pytest.mark.parametrize("target", WITH_A_TARGET, indirect=True)
async def test_a_target_that_is_down_gives_target_unavailable_and_then_recovers(
    target: Target,
) -> None:
    """With the target unreachable, health, revoke and issue raise TargetUnavailable (and
    check too, where it asks the target rather than the provider's records); once the
    target is back they work again and the grant can be revoked."""
    ctx = target.ctx()
    await target.issue(ctx)
    async with target.down():
        with pytest.raises(TargetUnavailable):
            await target.provider.health()
        with pytest.raises(TargetUnavailable):
            await target.provider.revoke(ctx)
        with pytest.raises(TargetUnavailable):
            await target.provider.issue(target.ctx(), now=time.time())
        if target.check_asks_target:
            with pytest.raises(TargetUnavailable):
                await target.provider.check(ctx)
    await target.provider.health()
    await target.provider.revoke(ctx)
    assert not await target.provider.check(ctx)
    assert ctx.grant_id not in await target.provider.live_grant_ids()


@pytest.mark.parametrize("target", EVERY, indirect=True)
async def test_secrets_appear_only_in_the_credential(
    target: Target, caplog: pytest.LogCaptureFixture, redis_client: aioredis.Redis, keys: Keys
) -> None:
    """At DEBUG, issue, re-issue and revoke log what they do but never a secret; a
    credential's repr and str redact its secrets; what a provider keeps in grantbot's Redis
    (only the providers that keep books there) holds none."""
    caplog.set_level(logging.DEBUG)
    ctx = target.ctx()
    creds = [await target.issue(ctx) for _ in range(2)]
    stored = await redis_text(redis_client, keys)
    assert (ctx.grant_id in stored) == target.keeps_books
    await target.provider.revoke(ctx)
    stored += await redis_text(redis_client, keys)
    secrets: list[str] = [s for cred in creds for s in cred.secret_values()]
    assert len(secrets) == 2 * target.secret_fields
    assert_secrets_not_logged(caplog, secrets)
    rendered: list[Any] = [text for cred in creds for text in (repr(cred), str(cred))]
    assert not [s for s in secrets if any(s in text for text in rendered)]
    assert not [s for s in secrets if s in stored]
