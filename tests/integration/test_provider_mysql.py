"""The mysql provider against the machine's real MariaDB, beyond the provider contract
(test_provider_contract.py): what an account may do, its password, grants, re-issue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pymysql
import pytest

from bot.providers.naming import login_name
from tests.integration.provider_targets import (
    MYSQL_ACCESS_DENIED,
    MysqlTarget,
    mysql_query,
    mysql_target,
)
from tests.integration.providers_fixtures import (
    MYSQL_ADMIN_DSN,
    unique,
)

pytestmark = pytest.mark.needs("mysql")

#: MariaDB's error code for a command the account has no privilege for.
COMMAND_DENIED = 1142


@pytest.fixture
async def my() -> AsyncIterator[MysqlTarget]:
    """A table in the test database with one row, and a provider for the machine's MariaDB."""
    async with mysql_target(MYSQL_ADMIN_DSN) as target:
        yield target


async def test_issued_account_logs_in_with_its_password_and_selects_only(my: MysqlTarget) -> None:
    """The issued user/password logs in (MariaDB checks the password), may SELECT the granted
    table, may not INSERT, and a wrong password is refused."""
    ctx = my.ctx()
    cred = await my.provider.issue(ctx, now=time.time())
    assert cred.ref == login_name(ctx.grant_id) == cred.get("user")
    conn = await asyncio.to_thread(my.login, cred)
    try:
        assert await asyncio.to_thread(mysql_query, conn, f"SELECT id FROM {my.table}") == [(42,)]
        with pytest.raises(pymysql.err.OperationalError) as denied:
            await asyncio.to_thread(mysql_query, conn, f"INSERT INTO {my.table} VALUES (1)")
        assert denied.value.args[0] == COMMAND_DENIED
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        await asyncio.to_thread(my.login, cred, password="not-the-password")
    assert refused.value.args[0] in MYSQL_ACCESS_DENIED
    assert "grantbot revokes" in (cred.get("note") or "")  # no target-side expiry: said so


async def test_database_level_grant_with_underscore_in_the_name_works(my: MysqlTarget) -> None:
    """A ``db.*`` grant on a database whose name has ``_`` (escaped, since it is a wildcard
    there) lets the login read that database."""
    db = unique("gbtest_db")
    await asyncio.to_thread(my.sql, f"CREATE DATABASE {db}")
    try:
        await asyncio.to_thread(my.sql, f"CREATE TABLE {db}.t (id int)")
        await asyncio.to_thread(my.sql, f"INSERT INTO {db}.t VALUES (7)")
        ctx = my.ctx(grants=[f"SELECT ON {db}.*"])
        cred = await my.provider.issue(ctx, now=time.time())
        conn = await asyncio.to_thread(my.login, cred, database=db)
        try:
            assert await asyncio.to_thread(mysql_query, conn, "SELECT id FROM t") == [(7,)]
        finally:
            conn.close()
        await my.provider.revoke(ctx)
    finally:
        await asyncio.to_thread(my.sql, f"DROP DATABASE IF EXISTS {db}")


async def test_issuing_twice_gives_one_account_with_the_new_password(my: MysqlTarget) -> None:
    """A second issue for one grant re-uses the account: one row in mysql.user, the new password
    works and the old one is refused."""
    ctx = my.ctx()
    first = await my.provider.issue(ctx, now=time.time())
    second = await my.provider.issue(ctx, now=time.time())
    assert first.ref == second.ref
    assert first.get("password") != second.get("password")
    users = await asyncio.to_thread(my.sql, "SELECT Host FROM mysql.user WHERE User=%s", first.ref)
    assert len(users) == 1
    (await asyncio.to_thread(my.login, second)).close()
    with pytest.raises(pymysql.err.OperationalError):
        await asyncio.to_thread(my.login, first)
