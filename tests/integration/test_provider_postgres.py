"""The postgres provider against real PostgreSQL, beyond the provider contract
(test_provider_contract.py): the machine's server (trust auth) for what a login may do, and
a private SCRAM cluster to prove passwords and VALID UNTIL for real."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.errors import ProviderError
from bot.providers.naming import login_name
from bot.providers.scram import scram_sha256_verifier
from tests.integration.provider_targets import PostgresTarget, postgres_target
from tests.integration.providers_fixtures import (
    PG_ADMIN_DSN,
    PrivatePostgres,
    make_ctx,
    unique,
)

pytestmark = pytest.mark.needs("postgres")


@pytest.fixture
async def pg() -> AsyncIterator[PostgresTarget]:
    """The machine's PostgreSQL (pg_hba trust: logins are not password-checked there)."""
    async with postgres_target(PG_ADMIN_DSN) as target:
        yield target


@pytest.fixture
async def scram_pg(pg_cluster: PrivatePostgres) -> AsyncIterator[PostgresTarget]:
    """A private cluster where every login must prove its password over SCRAM-SHA-256."""
    async with postgres_target(pg_cluster.dsn, cluster=pg_cluster) as target:
        yield target


def _verifies(stored: str, password: str) -> bool:
    """Recompute a stored SCRAM-SHA-256 verifier for ``password`` with its salt and count."""
    head, _keys = stored.split("$", 2)[1:]
    iterations, salt = head.split(":")
    return (
        scram_sha256_verifier(password, salt=base64.b64decode(salt), iterations=int(iterations))
        == stored
    )


async def test_issued_login_selects_what_its_role_grants_and_nothing_more(
    pg: PostgresTarget,
) -> None:
    """An issued login is a member of the policy's role, can SELECT its table, cannot INSERT,
    and expires (VALID UNTIL) exactly at the grant's expiry."""
    ctx = pg.ctx()
    cred = await pg.provider.issue(ctx, now=time.time())
    assert cred.ref == login_name(ctx.grant_id) == cred.get("user")
    conn = await pg.login(cred)
    try:
        assert await conn.fetchval(f"SELECT id FROM {pg.table}") == 42
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"INSERT INTO {pg.table} VALUES (1)")
    finally:
        await conn.close()
    row = await pg.role(cred.ref)
    assert row["rolcanlogin"]
    assert not row["rolsuper"]
    assert list(row["member_of"]) == [pg.group]
    assert row["rolvaliduntil"].timestamp() == pytest.approx(ctx.expires_at, abs=1e-3)
    assert row["rolpassword"].startswith("SCRAM-SHA-256$")
    assert _verifies(row["rolpassword"], cred.get("password") or "")


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


async def test_a_wrong_password_for_an_issued_login_is_refused_over_scram(
    scram_pg: PostgresTarget,
) -> None:
    """On a server that demands SCRAM passwords, the issued login with a wrong password is
    refused (that the right one works, and not after revoke, is the contract suite's)."""
    ctx = scram_pg.ctx()
    cred = await scram_pg.provider.issue(ctx, now=time.time())
    (await scram_pg.login(cred)).terminate()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await scram_pg.login(cred, password="not-the-password")


async def test_valid_until_ends_access_without_any_revoke(scram_pg: PostgresTarget) -> None:
    """PostgreSQL itself refuses the login once the grant's expiry passes, with no action from
    the bot (VALID UNTIL is the target-side expiry)."""
    ctx = scram_pg.ctx(ttl_s=1.5)
    cred = await scram_pg.provider.issue(ctx, now=time.time())
    conn = await scram_pg.login(cred)
    await conn.close()
    await asyncio.sleep(max(0.0, ctx.expires_at - time.time()) + 0.3)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await scram_pg.login(cred)
    assert not await scram_pg.provider.check(ctx)


async def test_issuing_twice_gives_one_login_with_the_new_password(
    scram_pg: PostgresTarget,
) -> None:
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
    (await scram_pg.login(second)).terminate()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await scram_pg.login(first)


async def test_revoke_drops_objects_the_login_created(pg: PostgresTarget) -> None:
    """Objects the login created are handed to the admin (REASSIGN OWNED) so DROP ROLE works."""
    with_create = pg.ctx()
    cred = await pg.provider.issue(with_create, now=time.time())
    table = unique("gbtest_made_by_login")
    admin = await asyncpg.connect(pg.dsn)
    try:
        await admin.execute(f"GRANT CREATE ON SCHEMA public TO {cred.ref}")
        conn = await pg.login(cred)
        await conn.execute(f"CREATE TABLE {table} (x int)")
        await conn.close()
        await pg.provider.revoke(with_create)
        assert await pg.role(cred.ref) is None
        owner = await admin.fetchval("SELECT tableowner FROM pg_tables WHERE tablename=$1", table)
        assert owner == await admin.fetchval("SELECT current_user")
    finally:
        await admin.execute(f"DROP TABLE IF EXISTS {table}")
        await admin.close()


async def test_unknown_or_superuser_grant_role_is_refused_and_leaves_no_login(
    pg: PostgresTarget,
) -> None:
    """A role to grant that does not exist, or is a superuser, fails the issue and the
    transaction leaves no login behind."""
    missing = make_ctx(role_settings={"grant_roles": [unique("gbtest_missing")]})
    with pytest.raises(ProviderError, match="do not exist"):
        await pg.provider.issue(missing, now=time.time())
    assert await pg.role(login_name(missing.grant_id)) is None
    superuser = unique("gbtest_super")
    admin = await asyncpg.connect(pg.dsn)
    try:
        await admin.execute(f"CREATE ROLE {superuser} SUPERUSER NOLOGIN")
        ctx = make_ctx(role_settings={"grant_roles": [superuser]})
        with pytest.raises(ProviderError, match="superuser"):
            await pg.provider.issue(ctx, now=time.time())
        assert await pg.role(login_name(ctx.grant_id)) is None
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {superuser}")
        await admin.close()
