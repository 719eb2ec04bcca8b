"""The grantbot CLI as a real process: exit codes, one-line failures, audit and grants."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.devtools.redis_server import free_port
from bot.domain.model import Actor, ActorKind, Event
from bot.store.grants import GrantStore
from tests.factories import NOW, POLICY_V, make_grant
from tests.integration.support import ROOT, grantbot


def test_policy_check_passes_on_the_repo_policy() -> None:
    """`grantbot policy check policies.yaml` exits 0 with the summary table."""
    done = grantbot("policy", "check", "policies.yaml")
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("resource"))
    assert header.split() == ["resource", "role", "requesters", "approvers", "N", "max", "duration"]
    assert "orders-db" in done.stdout


def test_policy_check_names_file_line_and_key(tmp_path: Path) -> None:
    """A bad duration fails with exit 1 and `file:line key.path: message`, no traceback."""
    bad = tmp_path / "policies.yaml"
    bad.write_text(
        "groups:\n"
        "  sre:\n"
        "    members: [U01]\n"
        "resources:\n"
        "  orders-db:\n"
        "    provider: {type: noop}\n"
        "    roles:\n"
        "      write:\n"
        "        requesters: {groups: [sre]}\n"
        "        approvers: {groups: [sre]}\n"
        "        max_duration: 10x\n"
    )
    done = grantbot("policy", "check", str(bad))
    assert done.returncode == 1
    assert (
        f'{bad}:11 resources.orders-db.roles.write.max_duration: "10x" is not a duration'
        in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_unknown_command_is_one_line_exit_2() -> None:
    """A usage error prints one line and exits 2."""
    done = grantbot("frobnicate")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["serve"],
        ["demo"],
        ["policy", "check"],
        ["grants", "list"],
        ["grants", "revoke"],
        ["revoke-all"],
        ["audit", "verify"],
        ["audit", "export"],
        ["audit", "keygen"],
        ["audit", "checkpoint"],
        ["report"],
    ],
)
def test_every_command_has_help(argv: list[str]) -> None:
    """Each subcommand answers --help with exit 0 and a usage line."""
    done = grantbot(*argv, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: grantbot")


def test_unreachable_redis_is_one_line_not_a_traceback() -> None:
    """With REDIS_URL pointing at a closed port the CLI says so in one line, exit 1 (3 for
    `audit verify`, whose exit codes tell tampering from an unreadable log)."""
    port = free_port()
    down = {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    says = f"REDIS_URL: nothing answered at redis://127.0.0.1:{port}: "
    done = grantbot("grants", "list", env=down)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"grantbot: {says}")
    verify = grantbot("audit", "verify", env=down)
    assert verify.returncode == 3
    [line] = verify.stderr.strip().splitlines()
    assert line.startswith(f"grantbot: could not read the audit log: {says}")


async def test_audit_verify_and_export(
    store: GrantStore, redis_client: aioredis.Redis, cli_env: dict[str, str]
) -> None:
    """verify exits 0 on an intact chain and 1 naming the entry after tampering; export
    streams JSON lines with the chain fields, and --since filters."""
    g = await store.create(
        make_grant(), actor=Actor(kind=ActorKind.REQUESTER, id="U0REQUEST"), policy_version=POLICY_V
    )
    await store.transition(
        g.id,
        Event.APPROVE,
        actor=Actor(kind=ActorKind.APPROVER, id="U0A"),
        now=NOW,
        policy_version=POLICY_V,
    )
    ok = grantbot("audit", "verify", env=cli_env)
    assert ok.returncode == 0 and "2 entries" in ok.stdout

    exported = grantbot("audit", "export", "--format", "jsonl", env=cli_env)
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [x["event"] for x in lines] == ["REQUEST", "APPROVE"]
    assert lines[1]["prev"] == lines[0]["hash"] and lines[1]["grant_id"] == g.id
    future = grantbot("audit", "export", "--since", "2999-01-01", env=cli_env)
    assert future.returncode == 0 and future.stdout == ""

    first = (await redis_client.xrange(store.keys.audit))[0][0]
    await redis_client.xdel(store.keys.audit, first)
    bad = grantbot("audit", "verify", env=cli_env)
    assert bad.returncode == 1
    assert "seq 2" in bad.stderr and "expected seq 1" in bad.stderr


async def test_grants_list_filters(store: GrantStore, cli_env: dict[str, str]) -> None:
    """grants list shows grants newest first and filters by --user and --state."""
    req = Actor(kind=ActorKind.REQUESTER, id="U0REQUEST")
    a = await store.create(make_grant(), actor=req, policy_version=POLICY_V)
    b = await store.create(
        make_grant(requester="U0OTHER", created_at=NOW + 5), actor=req, policy_version=POLICY_V
    )
    await store.transition(
        b.id,
        Event.APPROVE,
        actor=Actor(kind=ActorKind.APPROVER, id="U0A"),
        now=NOW,
        policy_version=POLICY_V,
    )

    everything = grantbot("grants", "list", env=cli_env)
    assert everything.returncode == 0
    body = everything.stdout.splitlines()[2:]
    assert [line.split()[0] for line in body] == [b.id, a.id]
    mine = grantbot("grants", "list", "--user", "U0REQUEST", "--format", "json", env=cli_env)
    assert [json.loads(line)["id"] for line in mine.stdout.splitlines()] == [a.id]
    approved = grantbot("grants", "list", "--state", "approved", env=cli_env)
    assert b.id in approved.stdout and a.id not in approved.stdout
    bad_state = grantbot("grants", "list", "--state", "bogus", env=cli_env)
    assert bad_state.returncode == 2


def test_serve_without_redis_url_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    """`grantbot serve` with no REDIS_URL (and no --dev) exits 1 with one line naming
    REDIS_URL and pointing to `grantbot demo`; it starts nothing (no embedded Redis dir)."""
    env = {
        "SLACK_BOT_TOKEN": "xoxb-not-used-here",
        "SLACK_SIGNING_SECRET": "not-used-here",
        "GRANTBOT_DATA_DIR": str(tmp_path / "data"),
    }
    environ_without_redis = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=ROOT,
        env={**environ_without_redis, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "REDIS_URL is not set" in lines[0] and "grantbot demo" in lines[0]
    assert not (tmp_path / "data").exists()


def test_policy_check_refuses_client_tokens_shared_or_short() -> None:
    """Two clients whose variables hold one token, or a token under 32 characters: exit 1
    naming the clients, never the token. An unset one is a warning naming the client."""
    fixture = str(ROOT / "tests" / "fixtures" / "pipeline_policy.yaml")
    token = "t" * 40
    shared = {"TEST_DEPLOY_ORDERS_TOKEN": token, "TEST_NIGHTLY_TOKEN": token}
    done = grantbot("policy", "check", fixture, env=shared)
    assert done.returncode == 1
    assert "clients deploy-orders, nightly have the same token" in done.stderr
    assert token not in done.stderr + done.stdout
    short = {"TEST_DEPLOY_ORDERS_TOKEN": "short", "TEST_NIGHTLY_TOKEN": token}
    done = grantbot("policy", "check", fixture, env=short)
    assert done.returncode == 1 and "shorter than 32 characters" in done.stderr
    done = grantbot("policy", "check", fixture, env={"TEST_DEPLOY_ORDERS_TOKEN": token})
    assert done.returncode == 0, done.stderr
    assert "warning: " in done.stderr and "client nightly is disabled" in done.stderr
