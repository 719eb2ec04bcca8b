"""AWS access end to end: a signed Slack request, an approver's click, credentials in the
requester's DM that work against a real AWS API endpoint (``moto_server``), and their end.

The bot is assembled as ``grantbot serve`` assembles it (tests/integration/slack_harness.py);
Slack is the emulator, AWS is moto. moto does not enforce the deny policy that ends an STS
session early, so the test checks the policy (it names only this session) and its removal
after the credentials' expiry, which AWS does enforce.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis.asyncio as aioredis

from bot.domain.model import Status
from bot.slack import ids
from bot.store.keys import Keys
from tests.integration.aws_fixtures import (
    ADMIN_SECRET,
    REGION,
    IdentityCenter,
    MotoServer,
    deny_statement,
    identity_center,
    make_role,
)
from tests.integration.slack_harness import ALICE, BOB, SlackHarness
from tests.integration.support import FakeClock, wait_for

POLICY = """
groups:
  engineers: {{members: [U0ALICE, U0BOB, U0CAROL]}}
  approvers: {{members: [U0BOB, U0CAROL]}}
defaults:
  requesters: {{groups: [engineers]}}
  approvers: {{groups: [approvers], channel: C0ACCESS}}
  max_duration: 1h
  default_duration: 30m
  require_reason: true
resources:
  aws-prod:
    provider:
      type: aws_sts
      region: {region}
      endpoint_url: {url}
      access_key_id: AKIAGRANTBOTADMIN000
      secret_access_key: ${{GB_TEST_AWS_SECRET}}
    roles:
      admin:
        provider:
          role_arn: {role_arn}
  aws-sso:
    provider:
      type: aws_identity_center
      region: {region}
      endpoint_url: {url}
      access_key_id: AKIAGRANTBOTADMIN000
      secret_access_key: ${{GB_TEST_AWS_SECRET}}
      max_attempts: 1
    roles:
      admin:
        provider:
          instance_arn: {instance_arn}
          permission_set_arn: {permission_set_arn}
          account_id: "{account_id}"
          session_duration: 1h
"""


class Aws:
    def __init__(self, moto: MotoServer, role_arn: str, ic: IdentityCenter) -> None:
        self.moto, self.role_arn, self.ic = moto, role_arn, ic


@pytest.fixture
def aws(moto_server: MotoServer) -> Aws:
    return Aws(moto_server, make_role(moto_server), identity_center(moto_server))


@pytest.fixture
def bot_options(aws: Aws, tmp_path: Path) -> dict[str, Any]:
    """The bot's policy reaches moto for both AWS providers; its clock is moved by hand."""
    policy = tmp_path / "policies.yaml"
    policy.write_text(
        POLICY.format(
            region=REGION,
            url=aws.moto.url,
            role_arn=aws.role_arn,
            instance_arn=aws.ic.instance_arn,
            permission_set_arn=aws.ic.permission_set_arn,
            account_id=aws.ic.account_id,
        )
    )
    return {
        "policy": policy,
        "environ": {"GB_TEST_AWS_SECRET": ADMIN_SECRET},
        "clock": FakeClock(time.time()),
    }


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def exported(dm_blocks: list[Any]) -> dict[str, str]:
    """The ``export NAME=value`` lines of the credential DM, as a dict."""
    text = "\n".join(block["text"]["text"] for block in dm_blocks if block.get("type") == "section")
    return dict(re.findall(r"export (AWS_[A-Z_]+)=([^\s`]+)", text))


async def test_sts_request_approval_credentials_and_early_end(
    slack: SlackHarness,
    aws: Aws,
    redis_client: aioredis.Redis,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`/access request aws-prod admin` -> Bob approves -> Alice's DM carries an access key,
    secret, session token and expiry with an export block and a credentials profile; those
    credentials call sts get-caller-identity as the grant's session. Revoke now attaches a
    deny policy naming only that session; once the credentials' expiry has passed, serve's
    sweep removes it. The secret and token appear nowhere but Alice's DM."""
    caplog.set_level(logging.DEBUG)
    await slack.command(ALICE, "request aws-prod admin 30m checking a deploy")
    grant = await slack.only_grant_of(ALICE)
    assert grant.status is Status.PENDING
    bob_copy = next(m for m in slack.copies(grant.id) if m.channel.startswith("D"))
    await slack.click(BOB, bob_copy, ids.APPROVE)
    active = await slack.bot.store.get(grant.id)
    assert active.status is Status.ACTIVE

    dm = slack.dms(ALICE)[-1]
    rendered = _text(dm.blocks)
    for label in ("access key id", "secret access key", "session token", "expires"):
        assert f"*{label}*" in rendered
    assert "~/.aws/credentials [grantbot-aws-prod-admin]" in rendered
    env = exported(dm.blocks)
    assert set(env) == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
    }
    me = (
        boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env["AWS_SESSION_TOKEN"],
            region_name=env["AWS_REGION"],
        )
        .client("sts", endpoint_url=aws.moto.url)  # type: ignore[call-overload]
        .get_caller_identity()
    )
    assert me["Arn"].endswith(f"assumed-role/{aws.role_arn.rsplit('/', 1)[-1]}/{grant.id}")
    assert me["Arn"] == active.credential_ref

    await slack.click(ALICE, dm, ids.REVOKE)
    revoked = await slack.bot.store.get(grant.id)
    assert revoked.status is Status.REVOKED
    statement = deny_statement(aws.moto, aws.role_arn, grant.id)
    assert statement is not None
    assert statement["Condition"] == {"StringLike": {"aws:userid": f"*:{grant.id}"}}

    # The credentials' own expiry (30 min) plus the margin passes: serve's sweep removes it.
    clock = slack.bot.service.clock
    assert isinstance(clock, FakeClock)
    clock.advance(3600)

    async def policy_gone() -> bool:
        return deny_statement(aws.moto, aws.role_arn, grant.id) is None

    await wait_for(policy_gone, timeout_s=15, what="the deny policy to be removed")

    secrets = [env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]]
    stored = [
        _text([key, await _plain(redis_client, key)])
        async for key in redis_client.scan_iter(match="{" + keys.prefix + "}*")
    ]
    audit = _text([e.data async for e in slack.bot.store.audit.entries()])
    elsewhere = [
        m
        for channel, messages in slack.emulator.workspace.messages.items()
        if channel != slack.emulator.dm_channel(ALICE)
        for m in messages
    ]
    for secret in secrets:
        assert secret not in caplog.text
        assert all(secret not in s for s in stored)
        assert secret not in audit
        assert all(secret not in _text(m.as_json()) for m in elsewhere)


async def _plain(redis: aioredis.Redis, key: str) -> Any:
    kind = await redis.type(key)
    if kind == "hash":
        return await redis.hgetall(key)
    if kind == "set":
        return sorted(await redis.smembers(key))
    if kind == "zset":
        return await redis.zrange(key, 0, -1)
    if kind == "stream":
        return [fields for _, fields in await redis.xrange(key)]
    if kind == "list":
        return await redis.lrange(key, 0, -1)
    return await redis.get(key)


async def test_sts_request_shorter_than_aws_allows_is_refused_saying_why(
    slack: SlackHarness,
) -> None:
    """A 10 minute request for an STS role is refused at once with AWS's minimum, nothing is
    stored and no approver is asked."""
    await slack.command(ALICE, "request aws-prod admin 10m quick look")
    assert "AWS STS credentials last at least 15m" in slack.last_ephemeral(ALICE)
    assert await slack.grants_of(ALICE) == []
    assert slack.emulator.messages("C0ACCESS") == []


async def test_identity_center_unknown_requester_is_refused_before_approval(
    slack: SlackHarness,
) -> None:
    """Alice's Slack email is not in the Identity Store: her request is refused saying so,
    nothing is stored and no approver is asked."""
    await slack.command(ALICE, "request aws-sso admin 30m checking billing")
    answer = slack.last_ephemeral(ALICE)
    assert "no user with your Slack email (alice@example.com)" in answer
    assert await slack.grants_of(ALICE) == []
    assert slack.emulator.messages("C0ACCESS") == []
    assert slack.dms(BOB) == []


async def test_identity_center_assignment_is_made_and_removed(
    slack: SlackHarness, aws: Aws
) -> None:
    """With Alice in the Identity Store, approval creates her assignment and the DM says a
    portal session already open lasts until the permission set's session duration ends;
    Revoke now deletes the assignment."""
    user_id = aws.ic.add_user("alice@example.com")
    await slack.command(ALICE, "request aws-sso admin 30m checking billing")
    grant = await slack.only_grant_of(ALICE)
    bob_copy = next(m for m in slack.copies(grant.id) if m.channel.startswith("D"))
    await slack.click(BOB, bob_copy, ids.APPROVE)
    assert (await slack.bot.store.get(grant.id)).status is Status.ACTIVE
    assert aws.ic.assigned(user_id) == 1
    dm = slack.dms(ALICE)[-1]
    assert "A portal session already open then lasts until the permission set" in _text(dm.blocks)
    await slack.click(ALICE, dm, ids.REVOKE)
    assert (await slack.bot.store.get(grant.id)).status is Status.REVOKED
    assert aws.ic.assigned(user_id) == 0
