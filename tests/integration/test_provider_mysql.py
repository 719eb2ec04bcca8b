"""The mysql provider against the machine's real MariaDB: accounts, passwords, grants, KILL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pymysql
import pytest

from bot.domain.credentials import Credential
from bot.errors import TargetUnavailable
from bot.providers.base import GrantContext, Provider
from bot.providers.naming import login_name
from bot.providers.registry import build_provider
from tests.integration.providers_fixtures import (
    MYSQL_ADMIN_DSN,
    assert_secrets_not_logged,
    closed_port,
    make_ctx,
    unique,
)

pytestmark = pytest.mark.needs("mysql")

ADMIN = urlsplit(MYSQL_ADMIN_DSN)
# MariaDB error codes: access denied at login (1698 when the account does not exist at all),
# command denied (privilege).
ACCESS_DENIED = (1045, 1698)
COMMAND_DENIED = 1142


def _admin() -> Any:
    return pymysql.connect(
        host=ADMIN.hostname,
        port=ADMIN.port or 3306,
        user=ADMIN.username or "root",
        password=ADMIN.password or "",
        autocommit=True,
    )


def _sql(statement: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args or None)
            return list(cur.fetchall())
    finally:
        conn.close()


def _login(cred: Credential, *, password: str | None = None, database: str = "test") -> Any:
    return pymysql.connect(
        host=cred.get("host"),
        port=int(cred.get("port") or 3306),
        user=cred.get("user"),
        password=password if password is not None else cred.get("password") or "",
        database=database,
        connect_timeout=10,
        read_timeout=10,
    )


def _query(conn: Any, statement: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(statement)
        return list(cur.fetchall())


@dataclass
class Target:
    table: str
    provider: Provider
    issued: list[GrantContext]

    def ctx(self, grants: list[str] | None = None, **kw: Any) -> GrantContext:
        ctx = make_ctx(role_settings={"grants": grants or [f"SELECT ON test.{self.table}"]}, **kw)
        self.issued.append(ctx)
        return ctx


@pytest.fixture
async def my() -> AsyncIterator[Target]:
    """A table in the test database with one row, and a provider for the machine's MariaDB."""
    table = unique("gbtest_orders")
    await asyncio.to_thread(_sql, f"CREATE TABLE test.{table} (id int)")
    await asyncio.to_thread(_sql, f"INSERT INTO test.{table} VALUES (42)")
    provider = build_provider(
        {"type": "mysql", "dsn": "${GB_TEST_MYSQL_DSN}"},
        env={"GB_TEST_MYSQL_DSN": MYSQL_ADMIN_DSN},
    )
    target = Target(table=table, provider=provider, issued=[])
    try:
        yield target
        for ctx in target.issued:  # nothing a test created outlives it
            await provider.revoke(ctx)
    finally:
        await provider.aclose()
        await asyncio.to_thread(_sql, f"DROP TABLE IF EXISTS test.{table}")


async def test_issued_account_logs_in_with_its_password_and_selects_only(my: Target) -> None:
    """The issued user/password logs in (MariaDB checks the password), may SELECT the granted
    table, may not INSERT, and a wrong password is refused."""
    ctx = my.ctx()
    cred = await my.provider.issue(ctx, now=time.time())
    assert cred.ref == login_name(ctx.grant_id) == cred.get("user")
    conn = await asyncio.to_thread(_login, cred)
    try:
        assert await asyncio.to_thread(_query, conn, f"SELECT id FROM {my.table}") == [(42,)]
        with pytest.raises(pymysql.err.OperationalError) as denied:
            await asyncio.to_thread(_query, conn, f"INSERT INTO {my.table} VALUES (1)")
        assert denied.value.args[0] == COMMAND_DENIED
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        await asyncio.to_thread(_login, cred, password="not-the-password")
    assert refused.value.args[0] in ACCESS_DENIED
    assert await my.provider.check(ctx)
    assert ctx.grant_id in await my.provider.live_grant_ids()
    assert "grantbot revokes" in (cred.get("note") or "")  # no target-side expiry: said so


async def test_database_level_grant_with_underscore_in_the_name_works(my: Target) -> None:
    """A ``db.*`` grant on a database whose name has ``_`` (escaped, since it is a wildcard
    there) lets the login read that database."""
    db = unique("gbtest_db")
    await asyncio.to_thread(_sql, f"CREATE DATABASE {db}")
    try:
        await asyncio.to_thread(_sql, f"CREATE TABLE {db}.t (id int)")
        await asyncio.to_thread(_sql, f"INSERT INTO {db}.t VALUES (7)")
        ctx = my.ctx([f"SELECT ON {db}.*"])
        cred = await my.provider.issue(ctx, now=time.time())
        conn = await asyncio.to_thread(_login, cred, database=db)
        try:
            assert await asyncio.to_thread(_query, conn, "SELECT id FROM t") == [(7,)]
        finally:
            conn.close()
        await my.provider.revoke(ctx)
    finally:
        await asyncio.to_thread(_sql, f"DROP DATABASE IF EXISTS {db}")


async def test_revoke_kills_open_connections_and_drops_the_account(my: Target) -> None:
    """Revoke KILLs a connection that is still open, the account is gone, and logging in again
    is refused."""
    ctx = my.ctx()
    cred = await my.provider.issue(ctx, now=time.time())
    conn = await asyncio.to_thread(_login, cred)
    await my.provider.revoke(ctx)
    with pytest.raises((pymysql.err.OperationalError, pymysql.err.InterfaceError)):
        await asyncio.to_thread(_query, conn, f"SELECT id FROM {my.table}")
    conn.close()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        await asyncio.to_thread(_login, cred)
    assert refused.value.args[0] in ACCESS_DENIED
    users = await asyncio.to_thread(_sql, "SELECT User FROM mysql.user WHERE User=%s", cred.ref)
    assert users == []
    assert not await my.provider.check(ctx)
    assert ctx.grant_id not in await my.provider.live_grant_ids()


async def test_revoking_twice_or_what_was_never_issued_succeeds(my: Target) -> None:
    """Revoke is idempotent: a second revoke, or one for a grant never issued, is success."""
    ctx = my.ctx()
    await my.provider.issue(ctx, now=time.time())
    await my.provider.revoke(ctx)
    await my.provider.revoke(ctx)
    await my.provider.revoke(my.ctx())


async def test_issuing_twice_gives_one_account_with_the_new_password(my: Target) -> None:
    """A second issue for one grant re-uses the account: one row in mysql.user, the new password
    works and the old one is refused."""
    ctx = my.ctx()
    first = await my.provider.issue(ctx, now=time.time())
    second = await my.provider.issue(ctx, now=time.time())
    assert first.ref == second.ref
    assert first.get("password") != second.get("password")
    users = await asyncio.to_thread(_sql, "SELECT Host FROM mysql.user WHERE User=%s", first.ref)
    assert len(users) == 1
    (await asyncio.to_thread(_login, second)).close()
    with pytest.raises(pymysql.err.OperationalError):
        await asyncio.to_thread(_login, first)


async def test_overlapping_grants_of_one_user_are_independent(my: Target) -> None:
    """Two grants of the same user and role get two accounts; revoking one leaves the other
    logging in and reading."""
    first, second = my.ctx(user="U0SAME"), my.ctx(user="U0SAME")
    cred1 = await my.provider.issue(first, now=time.time())
    cred2 = await my.provider.issue(second, now=time.time())
    assert cred1.ref != cred2.ref
    await my.provider.revoke(first)
    conn = await asyncio.to_thread(_login, cred2)
    try:
        assert await asyncio.to_thread(_query, conn, f"SELECT id FROM {my.table}") == [(42,)]
    finally:
        conn.close()


async def test_a_server_that_is_down_raises_target_unavailable() -> None:
    """With nothing listening at the DSN, revoke, issue and health raise TargetUnavailable."""
    provider = build_provider(
        {"type": "mysql", "dsn": f"mysql://root@127.0.0.1:{closed_port()}/test"}, env={}
    )
    ctx = make_ctx(role_settings={"grants": ["SELECT ON test.*"]})
    with pytest.raises(TargetUnavailable):
        await provider.revoke(ctx)
    with pytest.raises(TargetUnavailable):
        await provider.issue(ctx, now=time.time())
    with pytest.raises(TargetUnavailable):
        await provider.health()


async def test_no_issued_password_reaches_any_log_record(
    my: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG, issue + re-issue + revoke log nothing containing a password, and the
    credential's repr redacts it."""
    caplog.set_level(logging.DEBUG)
    ctx = my.ctx()
    creds = [await my.provider.issue(ctx, now=time.time()) for _ in range(2)]
    await my.provider.revoke(ctx)
    secrets = [s for c in creds for s in c.secret_values()]
    assert len(secrets) == 4
    assert_secrets_not_logged(caplog, secrets)
    assert not any(s in repr(c) for c in creds for s in secrets)
    await my.provider.health()
