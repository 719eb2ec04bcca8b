"""The postgres provider against real PostgreSQL: the machine's server (trust auth) for the
lifecycle, and a private SCRAM cluster to prove passwords and VALID UNTIL for real."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from bot.domain.credentials import Credential
from bot.errors import ProviderError, TargetUnavailable
from bot.providers.base import GrantContext, Provider
from bot.providers.naming import login_name
from bot.providers.registry import build_provider
from bot.providers.scram import scram_sha256_verifier
from tests.integration.providers_fixtures import (
    PG_ADMIN_DSN,
    PrivatePostgres,
    assert_secrets_not_logged,
    closed_port,
    make_ctx,
    unique,
)

pytestmark = pytest.mark.needs("postgres")


@dataclass
class Target:
    """A PostgreSQL server with a group role that may SELECT (only) one table."""

    dsn: str
    group: str
    table: str
    provider: Provider
    issued: list[GrantContext]

    def ctx(self, **kw: Any) -> GrantContext:
        ctx = make_ctx(role_settings={"grant_roles": [self.group]}, **kw)
        self.issued.append(ctx)
        return ctx


async def _setup_target(dsn: str) -> AsyncIterator[Target]:
    group, table = unique("gbtest_read"), unique("gbtest_orders")
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (42)")
        await admin.execute(f"CREATE ROLE {group} NOLOGIN; GRANT SELECT ON {table} TO {group}")
        provider = build_provider(
            {"type": "postgres", "dsn": "${GB_TEST_PG_DSN}"}, env={"GB_TEST_PG_DSN": dsn}
        )
        target = Target(dsn=dsn, group=group, table=table, provider=provider, issued=[])
        yield target
        for ctx in target.issued:  # nothing a test created outlives it
            await provider.revoke(ctx)
        await provider.aclose()
    finally:
        await admin.execute(f"DROP TABLE IF EXISTS {table}")
        await admin.execute(f"DROP ROLE IF EXISTS {group}")
        await admin.close()


@pytest.fixture
async def pg() -> AsyncIterator[Target]:
    """The machine's PostgreSQL (pg_hba trust: logins are not password-checked there)."""
    async for target in _setup_target(PG_ADMIN_DSN):
        yield target


@pytest.fixture(scope="module")
def scram_cluster() -> Iterator[PrivatePostgres]:
    with PrivatePostgres() as cluster:
        yield cluster


@pytest.fixture
async def scram_pg(scram_cluster: PrivatePostgres) -> AsyncIterator[Target]:
    """A private cluster where every login must prove its password over SCRAM-SHA-256."""
    async for target in _setup_target(scram_cluster.dsn):
        yield target


async def _login(target: Target, cred: Credential, *, password: str | None = None) -> Any:
    """Connect as the issued user to the target's server (the admin DSN's database)."""
    admin = urlsplit(target.dsn)
    return await asyncpg.connect(
        host=admin.hostname,
        port=admin.port,
        user=cred.get("user"),
        password=password if password is not None else cred.get("password"),
        database=admin.path.lstrip("/"),
        timeout=10,
    )


async def _role(dsn: str, name: str) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(
            "SELECT r.rolcanlogin, r.rolvaliduntil, r.rolsuper, a.rolpassword, "
            "array(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid "
            "WHERE m.member = r.oid) AS member_of "
            "FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = $1",
            name,
        )
    finally:
        await conn.close()


def _verifies(stored: str, password: str) -> bool:
    """Recompute a stored SCRAM-SHA-256 verifier for ``password`` with its salt and count."""
    head, _keys = stored.split("$", 2)[1:]
    iterations, salt = head.split(":")
    return (
        scram_sha256_verifier(password, salt=base64.b64decode(salt), iterations=int(iterations))
        == stored
    )


async def test_issued_login_selects_what_its_role_grants_and_nothing_more(pg: Target) -> None:
    """An issued login is a member of the policy's role, can SELECT its table, cannot INSERT,
    and expires (VALID UNTIL) exactly at the grant's expiry."""
    ctx = pg.ctx()
    cred = await pg.provider.issue(ctx, now=time.time())
    assert cred.ref == login_name(ctx.grant_id) == cred.get("user")
    conn = await _login(pg, cred)
    try:
        assert await conn.fetchval(f"SELECT id FROM {pg.table}") == 42
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"INSERT INTO {pg.table} VALUES (1)")
    finally:
        await conn.close()
    row = await _role(pg.dsn, cred.ref)
    assert row["rolcanlogin"]
    assert not row["rolsuper"]
    assert list(row["member_of"]) == [pg.group]
    assert row["rolvaliduntil"].timestamp() == pytest.approx(ctx.expires_at, abs=1e-3)
    assert row["rolpassword"].startswith("SCRAM-SHA-256$")
    assert _verifies(row["rolpassword"], cred.get("password") or "")
    assert await pg.provider.check(ctx)
    assert ctx.grant_id in await pg.provider.live_grant_ids()


async def test_scram_verifier_matches_postgresql_own_computation() -> None:
    """The verifier grantbot computes equals the one PostgreSQL computes for the same password,
    salt and iteration count, so the clear password never has to be sent."""
    name = unique("gbtest_scram")
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute("SET password_encryption = 'scram-sha-256'")
        await conn.execute(f"CREATE ROLE {name} PASSWORD 'correct horse battery'")
        stored = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname=$1", name)
    finally:
        await conn.execute(f"DROP ROLE IF EXISTS {name}")
        await conn.close()
    assert _verifies(stored, "correct horse battery")
    assert not _verifies(stored, "correct horse battery!")


async def test_issued_password_authenticates_over_scram_and_a_wrong_one_fails(
    scram_pg: Target,
) -> None:
    """On a server that demands SCRAM passwords, the issued password logs in, a wrong one is
    refused, and after revoke the issued one is refused too."""
    ctx = scram_pg.ctx()
    cred = await scram_pg.provider.issue(ctx, now=time.time())
    conn = await _login(scram_pg, cred)
    assert await conn.fetchval(f"SELECT id FROM {scram_pg.table}") == 42
    await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await _login(scram_pg, cred, password="not-the-password")
    await scram_pg.provider.revoke(ctx)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await _login(scram_pg, cred)


async def test_valid_until_ends_access_without_any_revoke(scram_pg: Target) -> None:
    """PostgreSQL itself refuses the login once the grant's expiry passes, with no action from
    the bot (VALID UNTIL is the target-side expiry)."""
    ctx = scram_pg.ctx(ttl_s=1.5)
    cred = await scram_pg.provider.issue(ctx, now=time.time())
    conn = await _login(scram_pg, cred)
    await conn.close()
    await asyncio.sleep(max(0.0, ctx.expires_at - time.time()) + 0.3)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await _login(scram_pg, cred)
    assert not await scram_pg.provider.check(ctx)


async def test_issuing_twice_gives_one_login_with_the_new_password(scram_pg: Target) -> None:
    """A second issue for one grant re-uses the login: one role, the new password works and the
    old one no longer does."""
    ctx = scram_pg.ctx()
    first = await scram_pg.provider.issue(ctx, now=time.time())
    second = await scram_pg.provider.issue(ctx, now=time.time())
    assert first.ref == second.ref
    assert first.get("password") != second.get("password")
    conn = await asyncpg.connect(scram_pg.dsn)
    try:
        count = await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname=$1", first.ref)
    finally:
        await conn.close()
    assert count == 1
    (await _login(scram_pg, second)).terminate()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await _login(scram_pg, first)


async def test_revoke_terminates_open_sessions_and_drops_the_login(pg: Target) -> None:
    """Revoke ends a session that is still open, and the role no longer exists afterwards."""
    ctx = pg.ctx()
    cred = await pg.provider.issue(ctx, now=time.time())
    conn = await _login(pg, cred)
    await conn.execute(f"CREATE TEMP TABLE scratch AS SELECT * FROM {pg.table}")  # owns things
    await pg.provider.revoke(ctx)
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
        await conn.fetchval("SELECT 1")
    conn.terminate()
    assert await _role(pg.dsn, cred.ref) is None
    assert not await pg.provider.check(ctx)
    assert ctx.grant_id not in await pg.provider.live_grant_ids()


async def test_revoking_twice_or_what_was_never_issued_succeeds(pg: Target) -> None:
    """Revoke is idempotent: a second revoke, or one for a grant never issued, is success."""
    ctx = pg.ctx()
    await pg.provider.issue(ctx, now=time.time())
    await pg.provider.revoke(ctx)
    await pg.provider.revoke(ctx)
    await pg.provider.revoke(pg.ctx())


async def test_revoke_drops_objects_the_login_created(pg: Target) -> None:
    """Objects the login created are handed to the admin (REASSIGN OWNED) so DROP ROLE works."""
    with_create = pg.ctx()
    cred = await pg.provider.issue(with_create, now=time.time())
    table = unique("gbtest_made_by_login")
    admin = await asyncpg.connect(pg.dsn)
    try:
        await admin.execute(f"GRANT CREATE ON SCHEMA public TO {cred.ref}")
        conn = await _login(pg, cred)
        await conn.execute(f"CREATE TABLE {table} (x int)")
        await conn.close()
        await pg.provider.revoke(with_create)
        assert await _role(pg.dsn, cred.ref) is None
        owner = await admin.fetchval("SELECT tableowner FROM pg_tables WHERE tablename=$1", table)
        assert owner == await admin.fetchval("SELECT current_user")
    finally:
        await admin.execute(f"DROP TABLE IF EXISTS {table}")
        await admin.close()


async def test_overlapping_grants_of_one_user_are_independent(pg: Target) -> None:
    """Two grants of the same user and role get two logins; revoking one leaves the other
    working."""
    first, second = pg.ctx(user="U0SAME"), pg.ctx(user="U0SAME")
    cred1 = await pg.provider.issue(first, now=time.time())
    cred2 = await pg.provider.issue(second, now=time.time())
    assert cred1.ref != cred2.ref
    await pg.provider.revoke(first)
    conn = await _login(pg, cred2)
    try:
        assert await conn.fetchval(f"SELECT id FROM {pg.table}") == 42
    finally:
        await conn.close()
    assert await pg.provider.check(second)
    assert not await pg.provider.check(first)


async def test_unknown_or_superuser_grant_role_is_refused_and_leaves_no_login(pg: Target) -> None:
    """A role to grant that does not exist, or is a superuser, fails the issue and the
    transaction leaves no login behind."""
    missing = make_ctx(role_settings={"grant_roles": [unique("gbtest_missing")]})
    with pytest.raises(ProviderError, match="do not exist"):
        await pg.provider.issue(missing, now=time.time())
    assert await _role(pg.dsn, login_name(missing.grant_id)) is None
    superuser = unique("gbtest_super")
    admin = await asyncpg.connect(pg.dsn)
    try:
        await admin.execute(f"CREATE ROLE {superuser} SUPERUSER NOLOGIN")
        ctx = make_ctx(role_settings={"grant_roles": [superuser]})
        with pytest.raises(ProviderError, match="superuser"):
            await pg.provider.issue(ctx, now=time.time())
        assert await _role(pg.dsn, login_name(ctx.grant_id)) is None
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {superuser}")
        await admin.close()


async def test_a_server_that_is_down_raises_target_unavailable() -> None:
    """With nothing listening at the DSN, revoke, issue and health raise TargetUnavailable."""
    provider = build_provider(
        {"type": "postgres", "dsn": f"postgresql://postgres@127.0.0.1:{closed_port()}/test"},
        env={},
    )
    ctx = make_ctx(role_settings={"grant_roles": ["orders_read"]})
    with pytest.raises(TargetUnavailable):
        await provider.revoke(ctx)
    with pytest.raises(TargetUnavailable):
        await provider.issue(ctx, now=time.time())
    with pytest.raises(TargetUnavailable):
        await provider.health()


async def test_no_issued_password_reaches_any_log_record(
    pg: Target, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG, issue + re-issue + revoke log nothing containing a password or connection
    string, and the credential's repr redacts them."""
    caplog.set_level(logging.DEBUG)
    ctx = pg.ctx()
    creds = [await pg.provider.issue(ctx, now=time.time()) for _ in range(2)]
    await pg.provider.revoke(ctx)
    secrets = [s for c in creds for s in c.secret_values()]
    assert len(secrets) == 4
    assert_secrets_not_logged(caplog, secrets)
    for cred in creds:
        assert not any(s in repr(cred) or s in str(cred) for s in secrets)
    await pg.provider.health()
