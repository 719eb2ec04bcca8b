"""``grantbot request`` as a pipeline step runs it: its own process, talking HTTP to the bot
assembled as serve does, while approvers act in the Slack emulator. Each outcome ends the
process with its exit code and, on failure, one line on stderr."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.devtools.redis_server import RedisServer
from bot.devtools.slack_driver import plain_text_value
from bot.domain.model import Grant, Status
from bot.slack import ids
from bot.store.keys import Keys
from tests.integration.slack_harness import ACCESS_CHANNEL, BOB, CAROL, SlackHarness, running_bot
from tests.integration.support import ROOT

POLICY = Path(__file__).parent.parent / "fixtures" / "pipeline_policy.yaml"
TOKEN = "tok-" + secrets.token_urlsafe(24)


@pytest.fixture
async def bot(
    redis_url: str, keys: Keys, redis_client: aioredis.Redis, cache_server: RedisServer
) -> AsyncIterator[SlackHarness]:
    env = {
        "TEST_DEPLOY_ORDERS_TOKEN": TOKEN,
        "TEST_NIGHTLY_TOKEN": "tok-" + secrets.token_urlsafe(24),
        "GRANTBOT_TEST_CACHE_URL": cache_server.url,
    }
    async with running_bot(
        redis_url=redis_url, prefix=keys.prefix, policy=POLICY, environ=env
    ) as harness:
        yield harness


def _api(bot: SlackHarness) -> str:
    return bot.driver.events_url.rsplit("/slack/events", 1)[0]


async def _start(*args: str, token: str | None = TOKEN) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRANTBOT_"))}
    if token is not None:
        env["DEPLOY_TOKEN"] = token
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "request",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


async def _pending(bot: SlackHarness) -> Grant:
    """The client's request, once it is filed and its approval copy is posted."""
    for _ in range(400):
        grants = await bot.bot.store.list_grants(user="client:deploy-orders", limit=1)
        if grants and bot.copies(grants[0].id):
            await bot.settle()
            return grants[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the request never arrived")


def _failure_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("grantbot request:")]
    assert len(lines) == 1, err
    return lines[0]


async def test_approved_credential_written_to_a_file_then_given_back(
    bot: SlackHarness, tmp_path: Path, cache_server: RedisServer
) -> None:
    """Approved in Slack: the export lines go to --output (0600, nothing on stdout) and log
    in to the real Redis; `request done ID` ends the grant."""
    out = tmp_path / "cred.env"
    # A symlink planted at the path: replaced by the file, its target never written.
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    out.symlink_to(victim)
    common = ["--api", _api(bot), "--token-env", "DEPLOY_TOKEN"]
    proc = await _start(
        *common,
        "cache",
        "read",
        "20m",
        "--reason",
        "warm the cache",
        "--deployment",
        "D-7",
        "--commit",
        "abc1234",
        "--wait",
        "1m",
        "--output",
        str(out),
    )
    grant = await _pending(bot)
    copy = next(m for m in bot.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await bot.click(BOB, copy, ids.APPROVE)
    code, stdout, stderr = await _finish(proc)
    assert code == 0, stderr
    assert stdout == ""
    assert not out.is_symlink() and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert victim.read_text() == "keep me\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    exported = dict(
        line.removeprefix("export ").split("=", 1) for line in out.read_text().splitlines()
    )
    assert exported["GRANTBOT_REQUEST_ID"] == grant.id
    password = exported["GRANTBOT_PASSWORD"]
    target = aioredis.Redis.from_url(
        cache_server.url, username=exported["GRANTBOT_USER"], password=password
    )
    assert await target.ping()
    await target.aclose()
    assert password not in stderr

    code, _, stderr = await _finish(await _start(*common, "done", grant.id))
    assert code == 0 and f"{grant.id}: revoked" in stderr
    assert (await bot.bot.store.get(grant.id)).status is Status.REVOKED


async def test_denied_exits_3_with_one_line(bot: SlackHarness) -> None:
    proc = await _start(
        "--api", _api(bot), "--token-env", "DEPLOY_TOKEN", "orders-db", "migrate", "10m",
        "--reason", "migrate", "--wait", "1m",
    )  # fmt: skip
    grant = await _pending(bot)
    copy = next(m for m in bot.copies(grant.id) if m.channel == ACCESS_CHANNEL)
    await bot.click(CAROL, copy, ids.DENY)
    [modal] = bot.emulator.views(CAROL)
    await bot.driver.view_submission(
        CAROL,
        modal.as_slack(),
        values={ids.DENY_REASON_BLOCK: {ids.DENY_REASON_ACTION: plain_text_value("not now")}},
    )
    code, stdout, stderr = await _finish(proc)
    assert code == 3 and stdout == ""
    assert _failure_line(stderr) == f"grantbot request: {grant.id} denied by {CAROL}: not now"


async def test_not_decided_in_time_exits_4_and_cancels(bot: SlackHarness) -> None:
    proc = await _start(
        "--api", _api(bot), "--token-env", "DEPLOY_TOKEN", "orders-db", "migrate",
        "--reason", "migrate", "--wait", "2s",
    )  # fmt: skip
    code, stdout, stderr = await _finish(proc)
    assert code == 4 and stdout == ""
    [grant] = await bot.bot.store.list_grants(user="client:deploy-orders", limit=5)
    assert _failure_line(stderr) == (
        f"grantbot request: {grant.id} was not decided within 2s; cancelled"
    )
    assert grant.status is Status.CANCELLED


@pytest.mark.parametrize(
    ("args", "token", "code", "says"),
    [
        (["orders-db", "migrate", "10m", "--reason", "x"], None, 2, "DEPLOY_TOKEN"),
        (["orders-db", "migrate", "10x", "--reason", "x"], TOKEN, 1, '"10x" is not a duration'),
        (["orders-db", "migrate", "2h", "--reason", "x"], TOKEN, 1, "limited to 30m"),
        (["nope", "--reason", "x"], TOKEN, 1, 'unknown resource "nope"; you may request'),
        (["orders-db", "migrate", "--reason", "x"], "wrong", 1, "(HTTP 401)"),
        (["orders-db", "--commit", "abc1", "--reason", "x"], TOKEN, 2, "need --deployment"),
        (["a", "b", "c", "d"], TOKEN, 2, "RESOURCE [ROLE] [DURATION]"),
        (["orders-db", "--reason", "x", "--wait", "soon"], TOKEN, 2, '"soon"'),
        (["orders-db", "--reason", "x", "--output", "/nonexistent/dir/x.env"], TOKEN, 2,
         "the directory /nonexistent/dir does not exist"),
        (["done"], TOKEN, 2, "usage: grantbot request [--api URL] [--token-env VAR] done ID"),
        (["done", "g-7k3p9xqm", "extra"], TOKEN, 2, "exactly one request id"),
        (["done", "../../openapi.json"], TOKEN, 2, '"../../openapi.json" is not a request id'),
    ],
    ids=["no-token", "bad-duration", "too-long", "unknown", "wrong-token", "no-deployment",
         "too-many-words", "bad-wait", "no-such-dir", "done-no-id", "done-extra",
         "done-traversal"],
)  # fmt: skip
async def test_bad_input_is_one_line_and_nothing_filed(
    bot: SlackHarness, args: list[str], token: str | None, code: int, says: str
) -> None:
    proc = await _start("--api", _api(bot), "--token-env", "DEPLOY_TOKEN", *args, token=token)
    got, stdout, stderr = await _finish(proc)
    assert got == code and stdout == ""
    assert says in _failure_line(stderr)
    assert await bot.bot.store.list_grants(limit=5) == []


async def test_unreachable_api_is_one_line(bot: SlackHarness) -> None:
    proc = await _start(
        "--api", "http://127.0.0.1:9", "--token-env", "DEPLOY_TOKEN", "orders-db", "--reason", "x"
    )
    code, _, stderr = await _finish(proc)
    assert code == 1 and "did not answer" in _failure_line(stderr)
    assert json.dumps(stderr).count("Traceback") == 0


async def test_an_existing_output_file_is_replaced_by_a_0600_one(
    bot: SlackHarness, tmp_path: Path
) -> None:
    """lab deploy is auto-approved: an existing 0644 file at --output ends up 0600 with the
    credential, not a world-readable file with it."""
    out = tmp_path / "cred.env"
    out.write_text("old\n")
    out.chmod(0o644)
    proc = await _start(
        "--api", _api(bot), "--token-env", "DEPLOY_TOKEN", "lab", "deploy", "10m",
        "--reason", "deploy", "--output", str(out),
    )  # fmt: skip
    code, _, stderr = await _finish(proc)
    assert code == 0, stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "GRANTBOT_REQUEST_ID=" in out.read_text()


async def test_output_that_cannot_be_written_gives_the_access_back(
    bot: SlackHarness, tmp_path: Path
) -> None:
    """--output names a directory: the credential was obtained but cannot be kept, so the
    access is given back (done) and the exit is 1 with one line, no traceback."""
    out = tmp_path / "a-directory"
    out.mkdir()
    proc = await _start(
        "--api", _api(bot), "--token-env", "DEPLOY_TOKEN", "lab", "deploy", "10m",
        "--reason", "deploy", "--output", str(out),
    )  # fmt: skip
    code, stdout, stderr = await _finish(proc)
    [grant] = await bot.bot.store.list_grants(user="client:deploy-orders", limit=5)
    assert code == 1 and stdout == "" and "Traceback" not in stderr
    assert _failure_line(stderr).startswith(f"grantbot request: {grant.id}: could not write")
    assert "the access was given back" in _failure_line(stderr)
    assert grant.status is Status.REVOKED


async def test_help_says_each_usage_once() -> None:
    proc = await _start("--help")
    code, stdout, _ = await _finish(proc)
    assert code == 0
    usage = stdout.split("\n\n", 1)[0]
    assert usage == (
        "usage: grantbot request [options] RESOURCE [ROLE] [DURATION]\n"
        "       grantbot request [--api URL] [--token-env VAR] done ID"
    )
