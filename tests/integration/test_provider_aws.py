"""The aws_sts and aws_identity_center providers against a real AWS API endpoint
(``moto_server`` in its own process, reached through boto3's ``endpoint_url``).

What every provider does (issue, check, revoke twice, after the target ended it, overlapping
grants, live_grant_ids, target down, secrets) is the provider contract suite's
(test_provider_contract.py, through the harnesses in provider_targets.py); what is AWS's own
is here.

moto does not enforce IAM deny policies, SourceIdentity or credential expiry, and reports
every account assignment SUCCEEDED at once: for STS, "access" here is "the credentials
authenticate and no deny policy names the session" (the policy document is checked), and the
waiting on IN_PROGRESS statuses is not exercised (docs/policies.md lists these).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import time
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
import redis.asyncio as aioredis

from bot.domain.model import Actor, ActorKind, Status
from bot.errors import ConfigError, PolicyDenied, ProviderError
from bot.providers.aws_identity_center import (
    AWSIdentityCenterProvider,
)
from bot.providers.aws_provider_settings import AWSSTSSettings
from bot.providers.aws_sts import CLEANUP_MARGIN_S, AWSSTSProvider
from bot.providers.base import GrantContext, Provider, RequestContext
from bot.providers.registry import build_provider
from bot.revocation.retry import RetryPolicy
from bot.revocation.revoker import Revoker
from bot.scheduling.reconciler import Reconciler
from bot.scheduling.scheduler import RevocationScheduler
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from tests.factories import POLICY_V, make_grant
from tests.integration.aws_fixtures import (
    MotoServer,
    deny_statement,
    make_role,
    provider_state,
    session_client,
    sts_provider,
)
from tests.integration.provider_targets import (
    AwsTarget,
    IdentityCenterTarget,
    StsTarget,
    aws_target,
    make_aws_target,
)
from tests.integration.support import AheadClock, wait_for

KINDS = ["aws_sts", "aws_identity_center"]


# -- REVOKE_FAILED, retries, recovery ------------------------------------------------------


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
        target = make_aws_target(kind, moto, redis_client, keys)
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
            target.provision_again()

            async def ended() -> bool:
                return (await store.get(grant.id)).status is Status.REVOKED

            await wait_for(ended, timeout_s=30, what="the retried revoke to succeed")
            if isinstance(target, StsTarget):
                statement = deny_statement(moto, target.role_arn, ctx.grant_id)
                assert statement is not None and statement["Effect"] == "Deny"
            else:
                assert isinstance(target, IdentityCenterTarget)
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
) -> AsyncIterator[StsTarget]:
    async with aws_target("aws_sts", moto_server, redis_client, keys) as target:
        assert isinstance(target, StsTarget)
        yield target


async def test_sts_credentials_last_the_grant_and_paste_ready_forms_work(
    sts: StsTarget, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
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
    sts: StsTarget, redis_client: aioredis.Redis, keys: Keys
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
    restarted = sts_provider(sts.moto, provider_state(redis_client, keys, "aws_sts"), AheadClock())
    try:
        due = cred.expires_at + CLEANUP_MARGIN_S + 1
        assert await restarted.housekeeping(now=due) == 1
    finally:
        await restarted.aclose()
    assert deny_statement(sts.moto, sts.role_arn, ctx.grant_id) is None
    assert await sts.state.get(ctx.grant_id) is None
    assert await sts.provider.check(other)


async def test_sts_issuing_again_after_a_revoke_lifts_its_deny(sts: StsTarget) -> None:
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


async def test_sts_a_reissue_near_the_end_still_gets_fifteen_minutes(sts: StsTarget) -> None:
    """Credentials issued with less than 15 minutes left (a re-issue after an extension race)
    last STS's minimum, and the recorded expiry covers them, so the revocation at the grant's
    end denies them until then."""
    ctx = sts.ctx(ttl_s=120)
    cred = await sts.issue(ctx)
    assert cred.expires_at >= time.time() + 880
    record = await sts.state.get(ctx.grant_id)
    assert record is not None and record["until"] >= cred.expires_at


async def test_sts_revoking_credentials_that_already_expired_makes_no_deny_policy(
    sts: StsTarget,
) -> None:
    """Credentials past their own expiry need no deny policy: a revoke then makes none and
    drops the grant's books."""
    ctx = sts.ctx()
    await sts.issue(ctx)
    await sts.expire_at_target(ctx)
    await sts.provider.revoke(ctx)
    assert deny_statement(sts.moto, sts.role_arn, ctx.grant_id) is None
    assert await sts.state.get(ctx.grant_id) is None


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
    target = make_aws_target("aws_sts", moto_server, redis_client, keys)
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
) -> AsyncIterator[IdentityCenterTarget]:
    async with aws_target("aws_identity_center", moto_server, redis_client, keys) as target:
        assert isinstance(target, IdentityCenterTarget)
        yield target


def ic_request(target: AwsTarget, email: str | None) -> RequestContext:
    return RequestContext(
        user="U0REQUEST",
        resource="aws-test",
        role="admin",
        role_settings=target.role_settings,
        duration_s=3600,
        email=email,
    )


async def test_ic_precheck_finds_the_requester_by_email_or_refuses(
    ic: IdentityCenterTarget,
) -> None:
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
    ic: IdentityCenterTarget,
) -> None:
    """Two grants of one user, permission set and account make one assignment at AWS (not
    two); it stays while either holds it and is deleted when the last one ends."""
    first, second = ic.ctx(), ic.ctx()
    await ic.issue(first)
    await ic.issue(second)
    assert ic.ic.assigned(ic.user_id) == 1
    await ic.provider.revoke(second)
    assert ic.ic.assigned(ic.user_id) == 1 and await ic.provider.check(first)
    await ic.provider.revoke(first)
    assert ic.ic.assigned(ic.user_id) == 0


async def test_ic_an_assignment_that_predates_grantbot_is_never_removed(
    ic: IdentityCenterTarget,
) -> None:
    """When an administrator had already assigned the permission set, a grant holds it
    without creating another, and its end leaves the standing assignment in place."""
    ic.ic.assign(ic.user_id)
    ctx = ic.ctx()
    cred = await ic.issue(ctx)
    assert ic.ic.assigned(ic.user_id) == 1
    assert "session duration (1h)" in (cred.get("note") or "")
    await ic.provider.revoke(ctx)
    assert ic.ic.assigned(ic.user_id) == 1
    assert ctx.grant_id not in await ic.provider.live_grant_ids()


async def test_ic_issue_without_a_known_email_fails_and_creates_nothing(
    ic: IdentityCenterTarget,
) -> None:
    """Issuing for an email the Identity Store does not have raises ProviderError and leaves
    no assignment and no books."""
    ctx = ic.ctx(email="stranger@example.com")
    with pytest.raises(ProviderError, match="no Identity Store user"):
        await ic.provider.issue(ctx, now=time.time())
    assert await ic.state.get(ctx.grant_id) is None


async def test_ic_reconciler_takes_back_only_orphans_grantbot_made(
    ic: IdentityCenterTarget, store: GrantStore
) -> None:
    """A reconciler sweep over the provider revokes an assignment whose grant the store does
    not know (grantbot made it), and leaves an administrator's assignment of another user."""
    still_there = await ic.foreign_access()
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
        store.revocation_jobs(),
        providers=lambda: {"aws-test": ic.provider},
    )
    try:
        report = await reconciler.sweep()
    finally:
        await revoker.aclose()
    assert report.orphans_revoked == [f"aws-test/{orphan.grant_id}"]
    assert ic.ic.assigned(ic.user_id) == 0
    assert await still_there()
