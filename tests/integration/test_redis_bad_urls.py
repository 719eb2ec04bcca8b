"""A REDIS_URL grantbot cannot use stops the start with one line and exit 1 (issue 12 item 1),
against real redis-server processes: a refused login, TLS to a server without it, a missing
CA file, nothing listening, a port or db that is not a number, a db out of range, a
"sentinel" or "cluster node" that is a plain Redis. And a Redis that wants a password it was
not given is a refused login for the clients too, not a RecursionError (issue 13)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis import exceptions as redis_errors

from bot.devtools.redis_server import RedisServer
from bot.store.connection import close_blocking, close_client, connect, connect_blocking
from tests.integration.support import grantbot

SERVE_ENV = {"SLACK_BOT_TOKEN": "xoxb-not-used-here", "SLACK_SIGNING_SECRET": "not-used-here"}


@pytest.fixture(scope="module")
def locked() -> Iterator[RedisServer]:
    """A redis-server with requirepass."""
    with RedisServer(appendonly=False, password="s3cret-pw") as server:
        yield server


@pytest.fixture(scope="module")
def plain() -> Iterator[RedisServer]:
    """A plain redis-server: no TLS, no sentinel, no cluster, 16 dbs."""
    with RedisServer(appendonly=False) as server:
        yield server


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://127.0.0.1:{locked}/0", "Redis refused the login"),
        ("redis://:wrong-pw@127.0.0.1:{locked}/0", "Redis refused the login"),
        ("rediss://127.0.0.1:{plain}/0", "TLS handshake"),
        (
            "rediss://127.0.0.1:{plain}/0?ssl_ca_certs=/nonexistent.pem",
            "ssl_ca_certs names a file that does not exist: /nonexistent.pem",
        ),
        ("redis://127.0.0.1:1/0", "nothing answered at redis://127.0.0.1:1"),
        ("redis://127.0.0.1:notaport/0", "port 'notaport' that is not a number"),
        ("redis://127.0.0.1:{plain}/abc", "db 'abc' that is not a number"),
        ("redis://127.0.0.1:{plain}/99", "has no such db"),
        ("redis+sentinel://127.0.0.1:{plain}/grantbot", "is not a sentinel"),
        ("redis+cluster://127.0.0.1:{plain}", "cluster mode is off there"),
    ],
)
def test_serve_with_a_redis_url_it_cannot_use_exits_1_with_one_line(
    url: str, says: str, locked: RedisServer, plain: RedisServer, tmp_path: Path
) -> None:
    url = url.format(locked=locked.port, plain=plain.port)
    done = grantbot(
        "serve", env={**SERVE_ENV, "REDIS_URL": url, "GRANTBOT_DATA_DIR": str(tmp_path)}
    )
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-2000:]
    assert says in lines[0] and "REDIS_URL" in lines[0]
    assert "wrong-pw" not in done.stderr and "s3cret-pw" not in done.stderr


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (("grants", "list"), 1),
        # audit verify keeps its own documented code for "could not read the log" (3)
        (("audit", "verify"), 3),
    ],
)
def test_the_cli_with_a_wrong_password_says_the_login_was_refused(
    command: tuple[str, ...], code: int, locked: RedisServer, tmp_path: Path
) -> None:
    url = f"redis://:wrong-pw@127.0.0.1:{locked.port}/0"
    done = grantbot(*command, env={"REDIS_URL": url, "GRANTBOT_DATA_DIR": str(tmp_path)})
    assert done.returncode == code
    assert "Redis refused the login" in done.stderr
    assert "try again shortly" not in done.stderr and "RecursionError" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]


def test_the_right_password_starts_nothing_but_passes_the_check(locked: RedisServer) -> None:
    """The check lets a good login through (the locked server's own URL carries it)."""
    from bot.store.preflight import check_reachable

    check_reachable(locked.url)


async def test_a_missing_password_is_a_refused_login_not_a_recursion(locked: RedisServer) -> None:
    """redis-py 5.3.1 recursed (handshake -> health check -> NOAUTH -> retry -> reconnect ->
    handshake ...) until RecursionError; the clients grantbot makes raise the refusal once."""
    url = f"redis://127.0.0.1:{locked.port}/0"
    client = connect(url)
    try:
        with pytest.raises(redis_errors.AuthenticationError):
            # bounded: before the fix this recursed with a backoff sleep at every level
            await asyncio.wait_for(client.ping(), timeout=30)
    finally:
        await close_client(client)
    blocking: redis.Redis = connect_blocking(url)
    try:
        with pytest.raises(redis_errors.AuthenticationError):
            blocking.ping()
    finally:
        close_blocking(blocking)
