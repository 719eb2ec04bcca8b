"""A deploy pipeline end to end, every part its own process: `grantbot serve`, the Slack
emulator, a private PostgreSQL that checks passwords (SCRAM), and a pipeline script that asks
through `grantbot request`, waits while an approver clicks Approve (a signed click, as Slack
sends it), logs in to PostgreSQL with the credential it receives, and gives it back with
`grantbot request done`; the login role is then gone. The credential is then looked for in
the bot's log, Redis, the audit log and every Slack call, and found in none of them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis

from bot.devtools.redis_server import free_port
from bot.devtools.slack_driver import SlackDriver
from bot.devtools.slack_emulator import DEFAULT_BOT_TOKEN, EmulatorControl
from bot.domain.model import Status
from bot.providers.naming import login_name
from bot.slack import ids
from bot.store.connection import connect
from bot.store.grants import GrantStore
from bot.store.keys import Keys
from tests.e2e.test_serve import _start_emulator, _stop, _wait_healthy, serve_env
from tests.integration.providers_fixtures import PrivatePostgres

pytestmark = pytest.mark.needs("postgres")

ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-signing-secret-" + uuid.uuid4().hex
TOKEN = "tok-" + secrets.token_urlsafe(24)
BOB = "U0BOB"
PG_ROLE = "orders_migrators"
CLIENT = "client:deploy-orders"

POLICY = """
groups:
  approvers: {members: [U0BOB, U0CAROL]}
clients:
  deploy-orders:
    description: the orders service's deploy pipeline
    token: ${E2E_DEPLOY_TOKEN}
defaults:
  approvers: {groups: [approvers], channel: C0ACCESS}
  max_duration: 1h
resources:
  orders-db:
    description: the orders database
    provider: {type: postgres, dsn: "${E2E_PG_DSN}"}
    roles:
      migrate:
        requesters: {clients: [deploy-orders]}
        max_duration: 30m
        provider: {grant_roles: [orders_migrators]}
"""

#: The pipeline step, as a CI job would write it (docs/pipelines.md). The password is
#: written to $SECRET_OUT only so that this test can look for it everywhere else.
PIPELINE = r"""
set -euo pipefail
creds=$("$PY" -m bot request --api "$API" --token-env DEPLOY_TOKEN \
  orders-db migrate 20m --reason "schema migration for D-123" \
  --deployment D-123 --deployment-url https://ci.example/deploy/123 --commit 0a1b2c3d \
  --wait 2m)
eval "$creds"
"$PY" - <<'PY'
import asyncio, os, asyncpg
async def main():
    conn = await asyncpg.connect(
        host=os.environ["GRANTBOT_HOST"], port=int(os.environ["GRANTBOT_PORT"]),
        user=os.environ["GRANTBOT_USER"], password=os.environ["GRANTBOT_PASSWORD"],
        database=os.environ["GRANTBOT_DBNAME"])
    print("logged in as", await conn.fetchval("SELECT current_user"))
    await conn.close()
asyncio.run(main())
PY
printf %s "$GRANTBOT_PASSWORD" > "$SECRET_OUT"
"$PY" -m bot request --api "$API" --token-env DEPLOY_TOKEN done "$GRANTBOT_REQUEST_ID"
echo "pipeline finished $GRANTBOT_REQUEST_ID"
"""


@dataclass(frozen=True)
class Stack:
    bot_url: str
    emulator_url: str
    redis_url: str
    prefix: str
    log: Path
    pg: PrivatePostgres


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("pipeline")
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    with PrivatePostgres() as pg:
        subprocess.run(
            [sys.executable, "-c", _CREATE_ROLE, pg.dsn, PG_ROLE], check=True, timeout=30
        )
        emulator, emulator_url = _start_emulator()
        prefix = f"e2e-{uuid.uuid4().hex[:10]}"
        port = free_port()
        env = serve_env(
            SLACK_BOT_TOKEN=DEFAULT_BOT_TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=f"{emulator_url.rstrip('/')}/api/",
            REDIS_URL=redis_url,
            GRANTBOT_POLICY=str(policy),
            GRANTBOT_REDIS_PREFIX=prefix,
            GRANTBOT_HOST="127.0.0.1",
            GRANTBOT_PORT=str(port),
            GRANTBOT_DATA_DIR=str(tmp / "data"),
            E2E_DEPLOY_TOKEN=TOKEN,
            E2E_PG_DSN=pg.dsn,
        )
        log = tmp / "serve.log"
        with log.open("wb") as stderr:
            bot = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"], env=env, cwd=ROOT, stderr=stderr
            )
        try:
            bot_url = f"http://127.0.0.1:{port}"
            _wait_healthy(bot_url, bot, log)
            yield Stack(bot_url, emulator_url, redis_url, prefix, log, pg)
            assert _stop(bot) == 0, "grantbot serve exits 0 on SIGTERM"
        finally:
            _stop(bot)
            _stop(emulator)
            client = redis.Redis.from_url(redis_url)
            for key in client.scan_iter(match="{" + prefix + "}*", count=1000):
                client.delete(key)
            client.close()


_CREATE_ROLE = """
import asyncio, sys, asyncpg
async def main(dsn, role):
    conn = await asyncpg.connect(dsn)
    await conn.execute(f"CREATE ROLE {role} NOLOGIN")
    await conn.close()
asyncio.run(main(*sys.argv[1:]))
"""


async def _eventually(check, *, timeout_s: float = 30.0):  # type: ignore[no-untyped-def]
    for _ in range(int(timeout_s / 0.1)):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {check.__name__}")


async def test_a_pipeline_asks_is_approved_logs_in_and_gives_it_back(
    stack: Stack, tmp_path: Path
) -> None:
    secret_out = tmp_path / "password"
    env = serve_env(
        PY=sys.executable, API=stack.bot_url, DEPLOY_TOKEN=TOKEN, SECRET_OUT=str(secret_out)
    )
    pipeline = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        PIPELINE,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    store_client = connect(stack.redis_url)
    store = GrantStore(store_client, keys=Keys(prefix=stack.prefix))
    try:
        async with (
            SlackDriver(
                f"{stack.bot_url}/slack/events",
                signing_secret=SECRET,
                emulator_url=stack.emulator_url,
            ) as driver,
            EmulatorControl(stack.emulator_url) as control,
        ):

            async def asked() -> str | None:
                grants = await store.list_grants(user=CLIENT, limit=1)
                return grants[0].id if grants else None

            grant_id: str = await _eventually(asked)

            async def approval_copy() -> dict[str, object] | None:
                state = await control.state()
                for m in state["messages"].get("C0ACCESS", []):
                    if f"Request `{grant_id}`" in json.dumps(m["blocks"]):
                        return dict(m)
                return None

            copy = await _eventually(approval_copy)
            shown = json.dumps(copy["blocks"])
            assert "A pipeline asks" in shown and "deploy-orders" in shown
            assert "<https://ci.example/deploy/123|D-123>" in shown and "0a1b2c3d" in shown
            resp = await driver.block_action(BOB, ids.APPROVE, message=copy, channel_id="C0ACCESS")
            assert resp.status == 200

            out, err = await asyncio.wait_for(pipeline.communicate(), timeout=90)
            stdout, stderr = out.decode(), err.decode()
            assert pipeline.returncode == 0, stderr
            login = login_name(grant_id)
            assert f"logged in as {login}" in stdout
            assert f"pipeline finished {grant_id}" in stdout
            password = secret_out.read_text()
            assert len(password) >= 16

            # The role is gone, the grant REVOKED by the client, with its deployment.
            conn = await asyncpg.connect(stack.pg.dsn)
            try:
                left = await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname=$1", login)
            finally:
                await conn.close()
            assert left == 0
            grant = await store.get(grant_id)
            assert grant.status is Status.REVOKED and grant.ended_by == CLIENT
            assert grant.deployment is not None and grant.deployment.commit == "0a1b2c3d"

            # The credential is nowhere but the sealed answer: not Slack, logs, Redis, audit.
            calls = await control.calls()
            assert not [c for c in calls if password in json.dumps(c)]
            assert password not in json.dumps(await control.state())
            assert password not in stack.log.read_text()
            assert password not in stdout + stderr
            raw = redis.Redis.from_url(stack.redis_url, decode_responses=True)
            try:
                for key in raw.scan_iter(match="{" + stack.prefix + "}*", count=1000):
                    kind = raw.type(key)
                    dumped = {
                        "string": lambda k: raw.get(k),
                        "hash": lambda k: raw.hgetall(k),
                        "stream": lambda k: raw.xrange(k),
                        "zset": lambda k: raw.zrange(k, 0, -1),
                        "set": lambda k: raw.smembers(k),
                    }[kind](key)
                    assert password not in str(dumped) and TOKEN not in str(dumped), key
                audit = [json.loads(f["body"]) for _, f in raw.xrange(Keys(stack.prefix).audit)]
            finally:
                raw.close()
            mine = [e for e in audit if e.get("grant_id") == grant_id]
            assert {e["actor"] for e in mine if e["event"] == "API_CALL"} == {CLIENT}
            [created] = [e for e in mine if e["event"] == "REQUEST"]
            assert created["details"]["deployment"]["id"] == "D-123"
    finally:
        await store_client.aclose()
        if pipeline.returncode is None:
            pipeline.kill()
            await pipeline.wait()

    # The operator's `grants list` shows the deployment.
    listed = subprocess.run(
        [sys.executable, "-m", "bot", "grants", "list"],
        cwd=ROOT,
        env=serve_env(REDIS_URL=stack.redis_url, GRANTBOT_REDIS_PREFIX=stack.prefix),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [row] = [line for line in listed.stdout.splitlines() if grant_id in line]
    assert "D-123" in row and CLIENT in row and "REVOKED" in row
