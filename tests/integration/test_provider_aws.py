"""The aws_sts and aws_identity_center providers against a real AWS API endpoint
(``moto_server`` in its own process, reached through boto3's ``endpoint_url``).

The contract tests at the top run once per provider through :class:`AwsTarget`, a small
per-provider harness (issue, what AWS shows, make the target end access itself, access
grantbot did not make), so they fold into the provider contract suite of the renovation as
they are. Provider-specific tests follow.

moto does not enforce IAM deny policies, SourceIdentity or credential expiry, and reports
every account assignment SUCCEEDED at once: for STS, "access" here is "the credentials
authenticate and no deny policy names the session" (the policy document is checked), and the
waiting on IN_PROGRESS statuses is not exercised (docs/policies.md lists these).
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import redis.asyncio as aioredis

from bot.domain.credentials import Credential
from bot.domain.ids import new_grant_id
from bot.domain.model import Actor, ActorKind, Status
from bot.errors import ConfigError, PolicyDenied, ProviderError, TargetUnavailable
from bot.providers.aws_identity_center import AWSIdentityCenterProvider
from bot.providers.aws_provider_settings import AWSIdentityCenterSettings, AWSSTSSettings
from bot.providers.aws_sts import CLEANUP_MARGIN_S, AWSSTSProvider, deny_policy_name
from bot.providers.base import GrantContext, Provider, RequestContext
from bot.providers.registry import build_provider
from bot.revocation import RetryPolicy, Revoker
from bot.scheduler import Reconciler, RevocationJobs, RevocationScheduler
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from bot.store.provider_state import ProviderState
from tests.factories import POLICY_V, make_grant
from tests.integration.aws_fixtures import (
    REGION,
    IdentityCenter,
    MotoServer,
    identity_center,
    make_role,
)
from tests.integration.providers_fixtures import assert_secrets_not_logged

KINDS = ["aws_sts", "aws_identity_center"]


class Clock:
    """The providers' clock, moved by hand (AWS's own clock keeps real time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def session_client(service: str, moto: MotoServer, cred: Credential) -> Any:
    """A boto3 client signing with the credentials grantbot issued."""
    return boto3.session.Session(
        aws_access_key_id=cred.get("access key id"),
        aws_secret_access_key=cred.get("secret access key"),
        aws_session_token=cred.get("session token"),
        region_name=REGION,
    ).client(service, endpoint_url=moto.url)  # type: ignore[call-overload]


def deny_statement(moto: MotoServer, role_arn: str, grant_id: str) -> dict[str, Any] | None:
    """The deny policy grantbot attached to the role for ``grant_id``'s session, or None."""
    iam = moto.client("iam")
    name = role_arn.rsplit("/", 1)[-1]
    try:
        out = iam.get_role_policy(RoleName=name, PolicyName=deny_policy_name(grant_id))
    except iam.exceptions.NoSuchEntityException:
        return None
    document = out["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    [statement] = document["Statement"]
    return dict(statement)


@dataclass
class AwsTarget:
    """One AWS provider under test and the means to look at its target directly."""

    kind: str
    moto: MotoServer
    provider: Provider
    state: ProviderState
    role_settings: dict[str, Any]
    email: str
    clock: Clock
    role_arn: str = ""
    ic: IdentityCenter | None = None
    user_id: str = ""
    issued: list[GrantContext] = field(default_factory=list)
    creds: dict[str, Credential] = field(default_factory=dict)

    def ctx(self, *, ttl_s: float = 1800.0, email: str | None = None) -> GrantContext:
        ctx = GrantContext(
            grant_id=new_grant_id(),
            user="U0REQUEST",
            resource="aws-test",
            role="admin",
            role_settings=self.role_settings,
            expires_at=time.time() + ttl_s,
            email=email or self.email,
        )
        self.issued.append(ctx)
        return ctx

    async def issue(self, ctx: GrantContext) -> Credential:
        cred = await self.provider.issue(ctx, now=time.time())
        self.creds[ctx.grant_id] = cred
        return cred

    def has_access(self, ctx: GrantContext) -> bool:
        """What AWS would let the grant's holder do now (see the module docstring)."""
        if self.kind == "aws_identity_center":
            assert self.ic is not None
            return self.ic.assigned(self.user_id) > 0
        cred = self.creds.get(ctx.grant_id)
        if cred is None:
            return False
        me = session_client("sts", self.moto, cred).get_caller_identity()
        assert me["Arn"].endswith(f"/{ctx.grant_id}")  # the session is named after the grant
        return deny_statement(self.moto, self.role_arn, ctx.grant_id) is None

    async def expire_at_target(self, ctx: GrantContext) -> None:
        """The target ends the access by itself: STS credentials reach their expiry (the
        providers' clock moves past it); an administrator removes the assignment."""
        if self.kind == "aws_sts":
            self.clock.offset = ctx.expires_at - time.time() + 60
        else:
            assert self.ic is not None
            self.ic.unassign(self.user_id)

    def foreign_access(self) -> Callable[[], bool]:
        """Access at the target that grantbot did not make; returns "is it still there"."""
        if self.kind == "aws_sts":
            sts = self.moto.client("sts")
            sts.assume_role(RoleArn=self.role_arn, RoleSessionName="ops-console")
            role = self.role_arn.rsplit("/", 1)[-1]

            def untouched() -> bool:
                """No policy on the role names the other session."""
                iam = self.moto.client("iam")
                for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                    doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                    if "ops-console" in json.dumps(doc):
                        return False
                return True

            return untouched
        assert self.ic is not None
        other = self.ic.add_user(f"other-{secrets.token_hex(3)}@example.com")
        self.ic.assign(other)
        ic = self.ic
        return lambda: ic.assigned(other) == 1


def sts_provider(
    moto: MotoServer, state: ProviderState, clock: Clock, **extra: Any
) -> AWSSTSProvider:
    settings = AWSSTSSettings.model_validate(moto.settings(max_attempts=1, timeout_s=3, **extra))
    return AWSSTSProvider(settings, state=state, clock=clock)


def ic_provider(moto: MotoServer, state: ProviderState, **extra: Any) -> AWSIdentityCenterProvider:
    settings = AWSIdentityCenterSettings.model_validate(
        moto.settings(max_attempts=1, timeout_s=3, poll_initial_s=0.05, **extra)
    )
    return AWSIdentityCenterProvider(settings, state=state)


def provider_state(redis: aioredis.Redis, keys: Keys, kind: str) -> ProviderState:
    return ProviderState(redis, keys=keys, kind=kind, resource="aws-test")


async def make_target(kind: str, moto: MotoServer, redis: aioredis.Redis, keys: Keys) -> AwsTarget:
    state = provider_state(redis, keys, kind)
    clock = Clock()
    email = f"req-{secrets.token_hex(4)}@example.com"
    if kind == "aws_sts":
        role_arn = make_role(moto)
        return AwsTarget(
            kind=kind,
            moto=moto,
            provider=sts_provider(moto, state, clock),
            state=state,
            role_settings={"role_arn": role_arn},
            email=email,
            clock=clock,
            role_arn=role_arn,
        )
    ic = identity_center(moto)
    return AwsTarget(
        kind=kind,
        moto=moto,
        provider=ic_provider(moto, state),
        state=state,
        role_settings=ic.role_settings(),
        email=email,
        clock=clock,
        ic=ic,
        user_id=ic.add_user(email),
    )


@pytest.fixture(params=KINDS)
async def aws(
    request: pytest.FixtureRequest,
    moto_server: MotoServer,
    redis_client: aioredis.Redis,
    keys: Keys,
) -> AsyncIterator[AwsTarget]:
    target = await make_target(request.param, moto_server, redis_client, keys)
    yield target
    target.clock.offset = 0.0
    for ctx in target.issued:
        await target.provider.revoke(ctx)
    await target.provider.aclose()


# -- the contract ----------------------------------------------------------------------------


async def test_issued_access_is_live_at_aws_and_known_to_the_provider(aws: AwsTarget) -> None:
    """Issue gives access AWS honours; check is true and live_grant_ids lists the grant."""
    ctx = aws.ctx()
    cred = await aws.issue(ctx)
    assert aws.has_access(ctx)
    assert await aws.provider.check(ctx)
    assert ctx.grant_id in await aws.provider.live_grant_ids()
    assert cred.expires_at > time.time()


async def test_revoke_ends_access_and_revoking_twice_or_unissued_succeeds(aws: AwsTarget) -> None:
    """Revoke takes the access away at AWS; a second revoke, and one for a grant never
    issued, are success and change nothing."""
    ctx = aws.ctx()
    await aws.issue(ctx)
    await aws.provider.revoke(ctx)
    assert not aws.has_access(ctx)
    assert not await aws.provider.check(ctx)
    assert ctx.grant_id not in await aws.provider.live_grant_ids()
    await aws.provider.revoke(ctx)
    assert not aws.has_access(ctx)
    await aws.provider.revoke(aws.ctx())


async def test_revoke_after_the_target_expired_it_is_success(aws: AwsTarget) -> None:
    """When AWS has already ended the access (expired credentials, an assignment an admin
    removed), revoke succeeds, leaves nothing behind at AWS, and the grant is not live."""
    ctx = aws.ctx()
    await aws.issue(ctx)
    await aws.expire_at_target(ctx)
    await aws.provider.revoke(ctx)
    assert ctx.grant_id not in await aws.provider.live_grant_ids()
    assert await aws.state.get(ctx.grant_id) is None
    if aws.kind == "aws_sts":  # expired on its own: no deny policy is needed or made
        assert deny_statement(aws.moto, aws.role_arn, ctx.grant_id) is None


async def test_overlapping_grants_are_independent(aws: AwsTarget) -> None:
    """Two grants of one user on the same role: revoking one leaves the other working,
    and ending both ends the access."""
    first, second = aws.ctx(), aws.ctx()
    await aws.issue(first)
    await aws.issue(second)
    await aws.provider.revoke(first)
    assert aws.has_access(second)
    assert await aws.provider.check(second)
    assert await aws.provider.live_grant_ids() >= {second.grant_id}
    assert first.grant_id not in await aws.provider.live_grant_ids()
    await aws.provider.revoke(second)
    assert not aws.has_access(second)


async def test_live_grant_ids_sees_what_it_issued_and_nothing_else(aws: AwsTarget) -> None:
    """Access made at AWS by someone else is never listed, and revoking every grant of
    grantbot's leaves it untouched."""
    still_there = aws.foreign_access()
    ctx = aws.ctx()
    await aws.issue(ctx)
    assert await aws.provider.live_grant_ids() == {ctx.grant_id}
    await aws.provider.revoke(ctx)
    assert await aws.provider.live_grant_ids() == set()
    assert still_there()


async def test_secrets_appear_only_in_the_credential(
    aws: AwsTarget, caplog: pytest.LogCaptureFixture, redis_client: aioredis.Redis, keys: Keys
) -> None:
    """The provider logs what it does, but never a secret key or session token, and what
    it keeps in Redis has none either."""
    caplog.set_level(logging.DEBUG)
    ctx = aws.ctx()
    cred = await aws.issue(ctx)
    stored = await redis_text(redis_client, keys)
    assert ctx.grant_id in stored, "the provider keeps its books in Redis"
    await aws.provider.revoke(ctx)
    stored += await redis_text(redis_client, keys)
    secrets_issued = cred.secret_values()
    if aws.kind == "aws_sts":
        assert secrets_issued, "STS credentials carry secrets"
    else:
        assert secrets_issued == []  # an assignment has nothing secret in it
    assert_secrets_not_logged(caplog, secrets_issued)
    for value in secrets_issued:
        assert value not in stored


async def redis_value(redis: aioredis.Redis, key: str) -> Any:
    """Whatever ``key`` holds, as plain data."""
    kind = await redis.type(key)
    if kind == "hash":
        return await redis.hgetall(key)
    if kind == "set":
        return sorted(await redis.smembers(key))
    if kind == "zset":
        return await redis.zrange(key, 0, -1)
    return await redis.get(key)


async def redis_text(redis: aioredis.Redis, keys: Keys) -> str:
    """Everything under the test's key prefix, as one text."""
    values = [
        [key, await redis_value(redis, key)]
        async for key in redis.scan_iter(match="{" + keys.prefix + "}*")
    ]
    return json.dumps(values)


async def test_target_down_raises_target_unavailable_and_recovers(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    """With moto_server stopped, issue, revoke, check and health raise TargetUnavailable for
    both providers; started again (the same things provisioned), they work again."""
    with MotoServer() as moto:
        targets = [await make_target(kind, moto, redis_client, keys) for kind in KINDS]
        issued = [(t, t.ctx()) for t in targets]
        for t, ctx in issued:
            await t.issue(ctx)
        moto.stop()
        for t, ctx in issued:
            with pytest.raises(TargetUnavailable):
                await t.provider.health()
            with pytest.raises(TargetUnavailable):
                await t.provider.revoke(ctx)
            with pytest.raises(TargetUnavailable):
                await t.provider.check(ctx)
            with pytest.raises(TargetUnavailable):
                await t.provider.issue(t.ctx(), now=time.time())
        moto.start()
        for t, _ in issued:
            await t.provider.health()
            await t.provider.aclose()


# -- REVOKE_FAILED, retries, recovery ------------------------------------------------------


def provision_again(kind: str, moto: MotoServer, target: AwsTarget) -> None:
    """After a restart of moto (which forgets everything), recreate what AWS would have
    kept while it was unreachable: the role; or the instance, permission set, user and the
    assignment grantbot made (moto re-seeded on start, so the same calls give the same ids)."""
    if kind == "aws_sts":
        make_role(moto, name=target.role_arn.rsplit("/", 1)[-1])
        return
    assert target.ic is not None
    ic = identity_center(moto)
    assert (ic.instance_arn, ic.permission_set_arn) == (
        target.ic.instance_arn,
        target.ic.permission_set_arn,
    )
    assert ic.add_user(target.email) == target.user_id
    ic.assign(target.user_id)
    assert ic.assigned(target.user_id) == 1


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], *, timeout_s: float, what: str
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class OneProvider:
    """The revoker's ProviderResolver over one provider; contexts carry the role settings."""

    def __init__(self, provider: Provider, role_settings: dict[str, Any]) -> None:
        self.provider, self.role_settings = provider, role_settings

    def resolve(self, grant: Any) -> tuple[Provider, GrantContext]:
        return self.provider, GrantContext(
            grant_id=grant.id,
            user=grant.requester,
            resource=grant.resource,
            role=grant.role,
            role_settings=self.role_settings,
            expires_at=grant.expires_at or 0.0,
        )


class Listener:
    def __init__(self) -> None:
        self.failed: list[str] = []

    async def on_ended(self, grant: Any) -> None:
        return None

    async def on_revoke_failed(self, grant: Any) -> None:
        self.failed.append(grant.id)

    async def on_access_removed(self, grant: Any) -> None:
        return None


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
async def test_revoke_failed_is_retried_until_moto_is_back(
    kind: str, store: GrantStore, redis_client: aioredis.Redis, keys: Keys, redis_url: str
) -> None:
    """moto_server stopped: an early revoke leaves the grant REVOKE_FAILED (audited, the
    listener told) and retries it with backoff; moto started again with the same things
    provisioned (the state AWS would have kept), the next retry takes the access away at
    AWS and the grant ends REVOKED."""
    with MotoServer() as moto:
        target = await make_target(kind, moto, redis_client, keys)
        ctx = target.ctx()
        await target.issue(ctx)
        now = time.time()
        grant = await store.create(
            make_grant(
                id=ctx.grant_id, status=Status.ACTIVE, resource="aws-test", role="admin",
                created_at=now, updated_at=now, activated_at=now, expires_at=ctx.expires_at,
            ),
            actor=Actor.system(),
            policy_version=POLICY_V,
        )  # fmt: skip
        listener = Listener()
        revoker = Revoker(
            store,
            resolver=OneProvider(target.provider, target.role_settings),
            listener=listener,
            policy_version=lambda: POLICY_V,
            retry=RetryPolicy(base_s=0.3, cap_s=0.6, window_s=60.0),
            revoke_timeout_s=5.0,
        )
        scheduler = RevocationScheduler(
            store, revoker, redis=redis_url, replica_id=f"aws-{kind}", lease_ttl_s=1.0
        )
        await scheduler.start()
        try:
            moto.stop()
            result = await revoker.revoke(
                grant.id, actor=Actor(kind=ActorKind.REQUESTER, id=grant.requester), reason="done"
            )
            assert result.status is Status.REVOKE_FAILED
            assert "unreachable" in (result.last_error or "")

            async def attempts(n: int) -> bool:
                return (await store.get(grant.id)).revoke_attempts >= n

            await wait_for(lambda: attempts(2), timeout_s=20, what="a retried attempt")
            assert grant.id in listener.failed
            moto.start()
            provision_again(kind, moto, target)

            async def ended() -> bool:
                return (await store.get(grant.id)).status is Status.REVOKED

            await wait_for(ended, timeout_s=30, what="the retried revoke to succeed")
            if kind == "aws_sts":
                statement = deny_statement(moto, target.role_arn, ctx.grant_id)
                assert statement is not None and statement["Effect"] == "Deny"
            else:
                assert target.ic is not None
                assert target.ic.assigned(target.user_id) == 0
            await store.audit.verify()
        finally:
            await scheduler.stop()
            await revoker.aclose()
            await target.provider.aclose()


# -- aws_sts ------------------------------------------------------------------------------


@pytest.fixture
async def sts(
    moto_server: MotoServer, redis_client: aioredis.Redis, keys: Keys
) -> AsyncIterator[AwsTarget]:
    target = await make_target("aws_sts", moto_server, redis_client, keys)
    yield target
    await target.provider.aclose()


async def test_sts_credentials_last_the_grant_and_paste_ready_forms_work(
    sts: AwsTarget, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AssumeRole names the session after the grant and asks for the grant's remaining time;
    the DM's ``export`` block and ``~/.aws/credentials`` profile, used as pasted, call
    sts get-caller-identity as that session."""
    ctx = sts.ctx(ttl_s=3000)
    cred = await sts.issue(ctx)
    assert abs(cred.expires_at - ctx.expires_at) < 5
    assert cred.ref.endswith(f":assumed-role/{sts.role_arn.rsplit('/', 1)[-1]}/{ctx.grant_id}")
    exported = dict(
        line.removeprefix("export ").split("=", 1)
        for line in (cred.get("export") or "").splitlines()
    )
    me = (
        boto3.session.Session(
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=exported["AWS_SESSION_TOKEN"],
            region_name=exported["AWS_REGION"],
        )
        .client("sts", endpoint_url=sts.moto.url)  # type: ignore[call-overload]
        .get_caller_identity()
    )
    assert me["Arn"] == cred.ref
    [label] = [f.label for f in cred.fields if f.label.startswith("~/.aws/credentials")]
    profile = label.split("[", 1)[1].rstrip("]")
    assert profile == "grantbot-aws-test-admin"
    credentials_file = tmp_path / "credentials"
    credentials_file.write_text(cred.get(label) or "")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials_file))
    from_profile = boto3.session.Session(profile_name=profile).client(
        "sts", endpoint_url=sts.moto.url
    )  # type: ignore[call-overload]
    assert from_profile.get_caller_identity()["Arn"] == cred.ref
    secret_labels = {f.label for f in cred.fields if f.secret}
    assert secret_labels == {"secret access key", "session token", "export", label}


async def test_sts_an_early_end_denies_only_that_session_until_its_expiry(
    sts: AwsTarget, redis_client: aioredis.Redis, keys: Keys
) -> None:
    """Revoking early attaches an inline deny policy whose condition matches this session's
    aws:userid and no other session of the role; the sweep leaves it while the credentials
    live and removes it once their expiry (plus the margin) has passed -- also when run by a
    new provider, as after a restart."""
    ctx, other = sts.ctx(), sts.ctx()
    cred = await sts.issue(ctx)
    other_cred = await sts.issue(other)
    await sts.provider.revoke(ctx)
    statement = deny_statement(sts.moto, sts.role_arn, ctx.grant_id)
    assert statement == {
        "Sid": "GrantbotRevokedSession",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringLike": {"aws:userid": f"*:{ctx.grant_id}"}},
    }
    pattern = statement["Condition"]["StringLike"]["aws:userid"]
    mine = session_client("sts", sts.moto, cred).get_caller_identity()["UserId"]
    theirs = session_client("sts", sts.moto, other_cred).get_caller_identity()["UserId"]
    assert fnmatch.fnmatchcase(mine, pattern) and not fnmatch.fnmatchcase(theirs, pattern)

    assert isinstance(sts.provider, AWSSTSProvider)
    assert await sts.provider.housekeeping(now=time.time()) == 0
    assert deny_statement(sts.moto, sts.role_arn, ctx.grant_id) is not None
    restarted = sts_provider(sts.moto, provider_state(redis_client, keys, "aws_sts"), Clock())
    try:
        due = cred.expires_at + CLEANUP_MARGIN_S + 1
        assert await restarted.housekeeping(now=due) == 1
    finally:
        await restarted.aclose()
    assert deny_statement(sts.moto, sts.role_arn, ctx.grant_id) is None
    assert await sts.state.get(ctx.grant_id) is None
    assert await sts.provider.check(other)


async def test_sts_issuing_again_after_a_revoke_lifts_its_deny(sts: AwsTarget) -> None:
    """A grant issued again after its revoke (an extension that won the race) gets a working
    session: the deny policy naming it is removed and its cleanup dropped."""
    ctx = sts.ctx()
    await sts.issue(ctx)
    await sts.provider.revoke(ctx)
    assert not await sts.provider.check(ctx)
    await sts.issue(ctx)
    assert deny_statement(sts.moto, sts.role_arn, ctx.grant_id) is None
    assert await sts.provider.check(ctx)
    assert ctx.grant_id in await sts.provider.live_grant_ids()


async def test_sts_a_reissue_near_the_end_still_gets_fifteen_minutes(sts: AwsTarget) -> None:
    """Credentials issued with less than 15 minutes left (a re-issue after an extension race)
    last STS's minimum, and the recorded expiry covers them, so the revocation at the grant's
    end denies them until then."""
    ctx = sts.ctx(ttl_s=120)
    cred = await sts.issue(ctx)
    assert cred.expires_at >= time.time() + 880
    record = await sts.state.get(ctx.grant_id)
    assert record is not None and record["until"] >= cred.expires_at


def sts_request(target: AwsTarget, duration_s: int) -> RequestContext:
    return RequestContext(
        user="U0REQUEST",
        resource="aws-test",
        role="admin",
        role_settings=target.role_settings,
        duration_s=duration_s,
    )


async def test_sts_precheck_refuses_durations_aws_will_not_give(
    moto_server: MotoServer, redis_client: aioredis.Redis, keys: Keys
) -> None:
    """Below 15 minutes, above the role's MaxSessionDuration (read from IAM) and above 12
    hours, a request is refused with the reason; within them it passes."""
    target = await make_target("aws_sts", moto_server, redis_client, keys)
    provider = target.provider
    assert isinstance(provider, AWSSTSProvider)
    try:
        await provider.precheck(sts_request(target, 3600), now=time.time())
        with pytest.raises(PolicyDenied, match="at least 15m; ask for 15m or more"):
            await provider.precheck(sts_request(target, 600), now=time.time())
        with pytest.raises(PolicyDenied, match=r"allows sessions of at most 1h \(its MaxSession"):
            await provider.precheck(sts_request(target, 7200), now=time.time())
        with pytest.raises(PolicyDenied, match="at most 12h"):
            await provider.precheck(sts_request(target, 13 * 3600), now=time.time())
    finally:
        await provider.aclose()


async def test_sts_precheck_knows_role_chaining_from_its_own_identity(
    moto_server: MotoServer, redis_client: aioredis.Redis, keys: Keys
) -> None:
    """When grantbot's own credentials are a role's session (GetCallerIdentity says
    assumed-role), a request over 1 hour is refused for role chaining, even on a role that
    allows 4 hours."""
    role_arn = make_role(moto_server, max_session_s=4 * 3600)
    own = moto_server.client("sts").assume_role(
        RoleArn=make_role(moto_server), RoleSessionName="grantbot-task"
    )["Credentials"]
    settings = AWSSTSSettings.model_validate(
        moto_server.settings(
            access_key_id=own["AccessKeyId"],
            secret_access_key=own["SecretAccessKey"],
            session_token=own["SessionToken"],
            max_attempts=1,
        )
    )
    provider = AWSSTSProvider(settings, state=provider_state(redis_client, keys, "aws_sts"))
    request = RequestContext(
        user="U0REQUEST",
        resource="aws-test",
        role="admin",
        role_settings={"role_arn": role_arn},
        duration_s=2 * 3600,
    )
    try:
        with pytest.raises(PolicyDenied, match="role chaining"):
            await provider.precheck(request, now=time.time())
        await provider.precheck(dataclasses.replace(request, duration_s=3600), now=time.time())
    finally:
        await provider.aclose()


async def test_sts_is_built_from_policy_settings_through_the_registry(
    moto_server: MotoServer, redis_client: aioredis.Redis, keys: Keys
) -> None:
    """build_provider builds aws_sts from a policy's settings (the secret key a ${VAR}) with
    grantbot's Redis for its books, and refuses to build it without them."""
    settings = {
        "type": "aws_sts",
        **moto_server.settings(secret_access_key="${AWS_SECRET}"),
    }
    with pytest.raises(ConfigError, match="Redis"):
        build_provider(settings, env={"AWS_SECRET": "x"})
    provider = build_provider(
        settings,
        env={"AWS_SECRET": "moto-admin-secret-not-real"},
        state=provider_state(redis_client, keys, "aws_sts"),
    )
    try:
        assert isinstance(provider, AWSSTSProvider)
        await provider.health()
    finally:
        await provider.aclose()


# -- aws_identity_center -----------------------------------------------------------------


@pytest.fixture
async def ic(
    moto_server: MotoServer, redis_client: aioredis.Redis, keys: Keys
) -> AsyncIterator[AwsTarget]:
    target = await make_target("aws_identity_center", moto_server, redis_client, keys)
    yield target
    for ctx in target.issued:
        await target.provider.revoke(ctx)
    await target.provider.aclose()


def ic_request(target: AwsTarget, email: str | None) -> RequestContext:
    return RequestContext(
        user="U0REQUEST",
        resource="aws-test",
        role="admin",
        role_settings=target.role_settings,
        duration_s=3600,
        email=email,
    )


async def test_ic_precheck_finds_the_requester_by_email_or_refuses(ic: AwsTarget) -> None:
    """A requester whose Slack email is in the Identity Store passes; an unknown email, or
    none at all, is refused saying so (before anyone is asked to approve)."""
    provider = ic.provider
    assert isinstance(provider, AWSIdentityCenterProvider)
    await provider.precheck(ic_request(ic, ic.email), now=time.time())
    with pytest.raises(PolicyDenied, match=r"no user with your Slack email \(nobody@"):
        await provider.precheck(ic_request(ic, "nobody@example.com"), now=time.time())
    with pytest.raises(PolicyDenied, match="cannot read your email address from Slack"):
        await provider.precheck(ic_request(ic, None), now=time.time())


async def test_ic_overlapping_grants_share_one_assignment_until_the_last_ends(
    ic: AwsTarget,
) -> None:
    """Two grants of one user, permission set and account make one assignment at AWS (not
    two); it stays while either holds it and is deleted when the last one ends."""
    first, second = ic.ctx(), ic.ctx()
    await ic.issue(first)
    await ic.issue(second)
    assert ic.ic is not None and ic.ic.assigned(ic.user_id) == 1
    await ic.provider.revoke(second)
    assert ic.ic.assigned(ic.user_id) == 1 and await ic.provider.check(first)
    await ic.provider.revoke(first)
    assert ic.ic.assigned(ic.user_id) == 0


async def test_ic_an_assignment_that_predates_grantbot_is_never_removed(ic: AwsTarget) -> None:
    """When an administrator had already assigned the permission set, a grant holds it
    without creating another, and its end leaves the standing assignment in place."""
    assert ic.ic is not None
    ic.ic.assign(ic.user_id)
    ctx = ic.ctx()
    cred = await ic.issue(ctx)
    assert ic.ic.assigned(ic.user_id) == 1
    assert "session duration (1h)" in (cred.get("note") or "")
    await ic.provider.revoke(ctx)
    assert ic.ic.assigned(ic.user_id) == 1
    assert ctx.grant_id not in await ic.provider.live_grant_ids()


async def test_ic_issue_without_a_known_email_fails_and_creates_nothing(ic: AwsTarget) -> None:
    """Issuing for an email the Identity Store does not have raises ProviderError and leaves
    no assignment and no books."""
    ctx = ic.ctx(email="stranger@example.com")
    with pytest.raises(ProviderError, match="no Identity Store user"):
        await ic.provider.issue(ctx, now=time.time())
    assert await ic.state.get(ctx.grant_id) is None


async def test_ic_reconciler_takes_back_only_orphans_grantbot_made(
    ic: AwsTarget, store: GrantStore
) -> None:
    """A reconciler sweep over the provider revokes an assignment whose grant the store does
    not know (grantbot made it), and leaves an administrator's assignment of another user."""
    assert ic.ic is not None
    still_there = ic.foreign_access()
    orphan = ic.ctx()
    await ic.issue(orphan)
    revoker = Revoker(
        store,
        resolver=OneProvider(ic.provider, ic.role_settings),
        listener=Listener(),
        policy_version=lambda: POLICY_V,
    )
    reconciler = Reconciler(
        store,
        revoker,
        RevocationJobs(store.redis, keys=store.keys),
        providers=lambda: {"aws-test": ic.provider},
    )
    try:
        report = await reconciler.sweep()
    finally:
        await revoker.aclose()
    assert report.orphans_revoked == [f"aws-test/{orphan.grant_id}"]
    assert ic.ic.assigned(ic.user_id) == 0
    assert still_there()
