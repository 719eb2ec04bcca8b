"""One harness per provider: the provider under test, and the means to look at its target
directly -- as the grant's holder sees it (``has_access``) and as the target's administrator
sees it (``held_at_target``). The provider contract suite (test_provider_contract.py) asks
every harness the same questions; each provider's own tests use its harness too.

A harness remembers every context it made (``ctx``) and revokes them when it is closed, so
nothing a test issued outlives it. What a target cannot do is said by its class flags: noop
has no target (nothing can end its access but revoke, and it cannot be down); only the SQL
targets and Redis have sessions a revoke must end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import asyncpg
import pymysql
import redis.asyncio as aioredis

from bot.devtools.redis_server import RedisServer
from bot.domain.ids import new_grant_id
from bot.providers.base import Credential, GrantContext, Provider
from bot.providers.naming import cert_serial, login_name
from bot.providers.noop import NoopProvider
from bot.providers.registry import build_provider
from bot.providers.ssh_cert import CLOCK_SKEW_S, SSHCertProvider, SSHCertSettings
from bot.store.keys import Keys
from bot.store.provider_state import ProviderState
from tests.integration.aws_fixtures import (
    IdentityCenter,
    MotoServer,
    deny_statement,
    ic_provider,
    identity_center,
    make_role,
    provider_state,
    session_client,
    sts_provider,
)
from tests.integration.providers_fixtures import (
    HOOK_SECRET,
    HookReceiver,
    PrivateMariaDB,
    PrivatePostgres,
    SshServer,
    make_ctx,
    new_user_key,
    ssh_keygen,
    unique,
)
from tests.integration.support import AheadClock

#: MariaDB error codes: access denied at login (1698 when the account does not exist at all).
MYSQL_ACCESS_DENIED = (1045, 1698)
#: The webhook tests' retry waits: short, so a receiver that is down fails fast.
HOOK_FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}


class Session(Protocol):
    """A connection the grant's holder opened at the target."""

    async def alive(self) -> bool:
        """Whether the connection still works (a query is answered)."""
        ...

    async def close(self) -> None: ...


@dataclass(kw_only=True)
class Target:
    """One provider and its target. Subclasses answer for their kind of target."""

    kind: ClassVar[str]
    #: The target has sessions a revoke must end (:meth:`open_session` works).
    has_sessions: ClassVar[bool] = False
    #: There is a target: it can end access by itself and it can be down.
    has_target: ClassVar[bool] = True
    #: ``check`` asks the target, so it fails while the target is down (otherwise it
    #: answers from what the provider recorded).
    check_asks_target: ClassVar[bool] = True
    #: Overlapping grants of one user share one thing at the target (an assignment)
    #: instead of one login each.
    shares_access: ClassVar[bool] = False
    #: Secret fields in one credential.
    secret_fields: ClassVar[int] = 0
    #: The provider keeps books in grantbot's Redis (a ProviderState).
    keeps_books: ClassVar[bool] = False

    provider: Provider
    role_settings: dict[str, Any] = field(default_factory=dict)
    issued: list[GrantContext] = field(default_factory=list)
    creds: dict[str, Credential] = field(default_factory=dict)

    def ctx(self, *, user: str = "U0REQUEST", ttl_s: float = 1800.0) -> GrantContext:
        """A fresh grant's context (remembered, and revoked when the harness closes)."""
        ctx = make_ctx(role_settings=self.role_settings, user=user, ttl_s=ttl_s)
        self.issued.append(ctx)
        return ctx

    async def issue(self, ctx: GrantContext) -> Credential:
        cred = await self.provider.issue(ctx, now=time.time())
        self.creds[ctx.grant_id] = cred
        return cred

    async def has_access(self, ctx: GrantContext) -> bool:
        """What the target lets the grant's holder do now, tried with the credential."""
        raise NotImplementedError

    async def held_at_target(self, ctx: GrantContext) -> list[str]:
        """What the target still holds that gives the grant access, as its administrator
        sees it (a login, an account, an ACL user, an assignment, a certificate neither
        expired nor revoked, a session not denied); empty once the access is gone."""
        raise NotImplementedError

    async def expire_at_target(self, ctx: GrantContext) -> None:
        """The target ends the grant's access by itself (its own expiry passes, or its
        administrator removes the access)."""
        raise NotImplementedError

    async def foreign_access(self) -> Callable[[], Awaitable[bool]]:
        """Access at the target that grantbot did not make; returns "is it still there"."""
        raise NotImplementedError

    async def open_session(self, ctx: GrantContext) -> Session:
        """A connection opened (and in use) with the grant's credential."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        """The target cannot be reached inside the block, and is back after it."""
        raise NotImplementedError
        yield  # pragma: no cover

    async def aclose(self) -> None:
        """Revoke everything the harness issued; close the provider."""
        for ctx in self.issued:
            await self.provider.revoke(ctx)
        await self.provider.aclose()


# -- noop ------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class NoopTarget(Target):
    """noop has no target: the provider's own record is all the access there is."""

    kind: ClassVar[str] = "noop"
    has_target: ClassVar[bool] = False
    check_asks_target: ClassVar[bool] = False

    async def has_access(self, ctx: GrantContext) -> bool:
        return await self.provider.check(ctx)

    async def held_at_target(self, ctx: GrantContext) -> list[str]:
        return [ctx.grant_id] if await self.provider.check(ctx) else []

    async def foreign_access(self) -> Callable[[], Awaitable[bool]]:
        """A grant another process's noop provider issued."""
        other, ctx = NoopProvider(), make_ctx(role_settings={})
        await other.issue(ctx, now=time.time())
        return lambda: other.check(ctx)


@contextlib.asynccontextmanager
async def noop_target() -> AsyncIterator[NoopTarget]:
    target = NoopTarget(provider=build_provider({"type": "noop"}, env={}))
    try:
        yield target
    finally:
        await target.aclose()


# -- postgres --------------------------------------------------------------------------------


@dataclass
class PgSession:
    conn: Any

    async def alive(self) -> bool:
        try:
            return bool(await self.conn.fetchval("SELECT 1"))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
            return False

    async def close(self) -> None:
        self.conn.terminate()


@dataclass(kw_only=True)
class PostgresTarget(Target):
    """A PostgreSQL server with a group role that may SELECT (only) one table. ``cluster``
    is set when the server is a private one this harness may stop."""

    kind: ClassVar[str] = "postgres"
    has_sessions: ClassVar[bool] = True
    secret_fields: ClassVar[int] = 2

    dsn: str
    group: str
    table: str
    cluster: PrivatePostgres | None = None
    foreign: list[str] = field(default_factory=list)

    async def admin(self) -> Any:
        return await asyncpg.connect(self.dsn)

    async def login(self, cred: Credential, *, password: str | None = None) -> Any:
        """Connect as the issued user to the target's server (the admin DSN's database)."""
        admin = urlsplit(self.dsn)
        return await asyncpg.connect(
            host=admin.hostname,
            port=admin.port,
            user=cred.get("user"),
            password=password if password is not None else cred.get("password"),
            database=admin.path.lstrip("/"),
            timeout=10,
        )

    async def role(self, name: str) -> Any:
        """The role ``name`` as pg_roles/pg_authid have it, or None."""
        conn = await self.admin()
        try:
            return await conn.fetchrow(
                "SELECT r.rolcanlogin, r.rolvaliduntil, r.rolsuper, a.rolpassword, "
                "array(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b "
                "ON b.oid = m.roleid WHERE m.member = r.oid) AS member_of "
                "FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = $1",
                name,
            )
        finally:
            await conn.close()

    async def has_access(self, ctx: GrantContext) -> bool:
        try:
            conn = await self.login(self.creds[ctx.grant_id])
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
            return False
        try:
            return bool(await conn.fetchval(f"SELECT id FROM {self.table}") == 42)
        finally:
            await conn.close()

    async def held_at_target(self, ctx: GrantContext) -> list[str]:
        name = login_name(ctx.grant_id)
        return [f"role {name}"] if await self.role(name) is not None else []

    async def expire_at_target(self, ctx: GrantContext) -> None:
        """VALID UNTIL passes: PostgreSQL refuses the password from then on."""
        conn = await self.admin()
        try:
            await conn.execute(
                f"ALTER ROLE {login_name(ctx.grant_id)} VALID UNTIL '2000-01-01 00:00:00+00'"
            )
        finally:
            await conn.close()

    async def foreign_access(self) -> Callable[[], Awaitable[bool]]:
        """A login an administrator made, in the same group."""
        name = unique("gbtest_app")
        self.foreign.append(name)
        conn = await self.admin()
        try:
            await conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'app-pw' IN ROLE {self.group}")
        finally:
            await conn.close()

        async def still_there() -> bool:
            return await self.role(name) is not None

        return still_there

    async def open_session(self, ctx: GrantContext) -> Session:
        """A login that also owns something (a temporary table), as a real session may."""
        conn = await self.login(self.creds[ctx.grant_id])
        await conn.execute(f"CREATE TEMP TABLE scratch AS SELECT * FROM {self.table}")
        return PgSession(conn)

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        assert self.cluster is not None, "only a private cluster can be stopped"
        await asyncio.to_thread(self.cluster.stop, keep_data=True)
        try:
            yield
        finally:
            await asyncio.to_thread(self.cluster.start)


@contextlib.asynccontextmanager
async def postgres_target(
    dsn: str, *, cluster: PrivatePostgres | None = None
) -> AsyncIterator[PostgresTarget]:
    """A group role and a table on the server at ``dsn``, and a postgres provider for it."""
    group, table = unique("gbtest_read"), unique("gbtest_orders")
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE TABLE {table} (id int); INSERT INTO {table} VALUES (42)")
        await admin.execute(f"CREATE ROLE {group} NOLOGIN; GRANT SELECT ON {table} TO {group}")
    finally:
        await admin.close()
    provider = build_provider(
        {"type": "postgres", "dsn": "${GB_TEST_PG_DSN}"}, env={"GB_TEST_PG_DSN": dsn}
    )
    target = PostgresTarget(
        provider=provider,
        role_settings={"grant_roles": [group]},
        dsn=dsn,
        group=group,
        table=table,
        cluster=cluster,
    )
    try:
        yield target
    finally:
        await target.aclose()  # nothing a test issued outlives it
        admin = await asyncpg.connect(dsn)
        try:
            for name in target.foreign:
                await admin.execute(f"DROP ROLE IF EXISTS {name}")
            await admin.execute(f"DROP TABLE IF EXISTS {table}")
            await admin.execute(f"DROP ROLE IF EXISTS {group}")
        finally:
            await admin.close()


# -- mysql (MariaDB here) --------------------------------------------------------------------


@dataclass
class MysqlSession:
    conn: Any

    async def alive(self) -> bool:
        try:
            return await asyncio.to_thread(mysql_query, self.conn, "SELECT 1") == [(1,)]
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError):
            return False

    async def close(self) -> None:
        with contextlib.suppress(pymysql.err.Error):
            self.conn.close()


def mysql_query(conn: Any, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(statement, args or None)
        return list(cur.fetchall())


@dataclass(kw_only=True)
class MysqlTarget(Target):
    """A MariaDB server with a table holding one row (42). ``server`` is set when it is a
    private one this harness may stop."""

    kind: ClassVar[str] = "mysql"
    has_sessions: ClassVar[bool] = True
    secret_fields: ClassVar[int] = 2

    dsn: str
    table: str
    server: PrivateMariaDB | None = None
    foreign: list[str] = field(default_factory=list)

    def admin(self) -> Any:
        parts = urlsplit(self.dsn)
        return pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            autocommit=True,
        )

    def sql(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        """One statement as the administrator (blocking: call it in a thread)."""
        conn = self.admin()
        try:
            return mysql_query(conn, statement, *args)
        finally:
            conn.close()

    def login(
        self, cred: Credential, *, password: str | None = None, database: str = "test"
    ) -> Any:
        """Log in as the issued account (blocking: call it in a thread)."""
        return pymysql.connect(
            host=cred.get("host"),
            port=int(cred.get("port") or 3306),
            user=cred.get("user"),
            password=password if password is not None else cred.get("password") or "",
            database=database,
            connect_timeout=10,
            read_timeout=10,
        )

    def ctx(
        self, *, user: str = "U0REQUEST", ttl_s: float = 1800.0, grants: list[str] | None = None
    ) -> GrantContext:
        """A fresh grant's context; ``grants`` other than SELECT on the table if given."""
        settings = {"grants": grants} if grants else self.role_settings
        ctx = make_ctx(role_settings=settings, user=user, ttl_s=ttl_s)
        self.issued.append(ctx)
        return ctx

    async def has_access(self, ctx: GrantContext) -> bool:
        try:
            conn = await asyncio.to_thread(self.login, self.creds[ctx.grant_id])
        except pymysql.err.OperationalError as refused:
            if refused.args[0] in MYSQL_ACCESS_DENIED:
                return False
            raise
        try:
            rows = await asyncio.to_thread(mysql_query, conn, f"SELECT id FROM {self.table}")
            return rows == [(42,)]
        finally:
            conn.close()

    async def held_at_target(self, ctx: GrantContext) -> list[str]:
        name = login_name(ctx.grant_id)
        hosts = await asyncio.to_thread(self.sql, "SELECT Host FROM mysql.user WHERE User=%s", name)
        return [f"account {name}@{host}" for (host,) in hosts]

    async def expire_at_target(self, ctx: GrantContext) -> None:
        """An administrator drops the account (MariaDB has no expiry of its own here)."""
        name = login_name(ctx.grant_id)
        for (host,) in await asyncio.to_thread(
            self.sql, "SELECT Host FROM mysql.user WHERE User=%s", name
        ):
            await asyncio.to_thread(self.sql, "DROP USER %s@%s", name, host)

    async def foreign_access(self) -> Callable[[], Awaitable[bool]]:
        """An account an administrator made, reading the same table."""
        name = unique("gbtest_app")
        self.foreign.append(name)
        await asyncio.to_thread(self.sql, "CREATE USER %s@'%%' IDENTIFIED BY 'app-pw'", name)
        await asyncio.to_thread(self.sql, f"GRANT SELECT ON test.{self.table} TO %s@'%%'", name)

        async def still_there() -> bool:
            rows = await asyncio.to_thread(self.sql, "SELECT 1 FROM mysql.user WHERE User=%s", name)
            return bool(rows)

        return still_there

    async def open_session(self, ctx: GrantContext) -> Session:
        conn = await asyncio.to_thread(self.login, self.creds[ctx.grant_id])
        await asyncio.to_thread(mysql_query, conn, f"SELECT id FROM {self.table}")
        return MysqlSession(conn)

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        assert self.server is not None, "only a private server can be stopped"
        await asyncio.to_thread(self.server.stop, keep_data=True)
        try:
            yield
        finally:
            await asyncio.to_thread(self.server.start)


@contextlib.asynccontextmanager
async def mysql_target(
    dsn: str, *, server: PrivateMariaDB | None = None
) -> AsyncIterator[MysqlTarget]:
    """A table in the ``test`` database of the server at ``dsn``, and a mysql provider."""
    table = unique("gbtest_orders")
    target = MysqlTarget(
        provider=build_provider(
            {"type": "mysql", "dsn": "${GB_TEST_MYSQL_DSN}"}, env={"GB_TEST_MYSQL_DSN": dsn}
        ),
        role_settings={"grants": [f"SELECT ON test.{table}"]},
        dsn=dsn,
        table=table,
        server=server,
    )
    await asyncio.to_thread(target.sql, f"CREATE TABLE test.{table} (id int)")
    await asyncio.to_thread(target.sql, f"INSERT INTO test.{table} VALUES (42)")
    try:
        yield target
    finally:
        await target.aclose()  # nothing a test issued outlives it
        for name in target.foreign:
            await asyncio.to_thread(target.sql, "DROP USER IF EXISTS %s@'%%'", name)
        await asyncio.to_thread(target.sql, f"DROP TABLE IF EXISTS test.{table}")


# -- redis_acl -------------------------------------------------------------------------------


class Resp:
    """A raw RESP client over one TCP connection: no reconnects, so a killed connection
    shows as end-of-stream instead of being silently re-opened."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Resp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def call(self, *args: str) -> str:
        """Send one command; return its first reply line (``+OK``, ``-NOPERM ...``, ``$3``)."""
        out = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        self.writer.write(out.encode())
        await self.writer.drain()
        line = await asyncio.wait_for(self.reader.readline(), 5)
        if line.startswith(b"$") and line != b"$-1\r\n":
            await self.reader.readline()  # the bulk string's payload
        return line.decode().rstrip("\r\n")

    async def alive(self) -> bool:
        """The connection still answers (an empty line: the server closed it)."""
        try:
            return await self.call("GET", "cache:x") != ""
        except ConnectionError:
            return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


#: The role the redis_acl tests grant: read commands on ``cache:*`` keys.
REDIS_ROLE = {"commands": "+@read", "keys": "~cache:*"}


@dataclass(kw_only=True)
class RedisAclTarget(Target):
    """A private redis-server whose ACL users are the credentials."""

    kind: ClassVar[str] = "redis_acl"
    has_sessions: ClassVar[bool] = True
    secret_fields: ClassVar[int] = 2

    server: RedisServer
    role_settings: dict[str, Any] = field(default_factory=lambda: dict(REDIS_ROLE))

    async def login(self, cred: Credential, *, password: str | None = None) -> tuple[Resp, str]:
        """A connection AUTHed as the issued user, and AUTH's reply."""
        conn = await Resp.open(self.server.port)
        reply = await conn.call(
            "AUTH", cred.get("user") or "", password or cred.get("password") or ""
        )
        return conn, reply

    async def admin(self, *args: str) -> str:
        conn = await Resp.open(self.server.port)
        try:
            return await conn.call(*args)
        finally:
            await conn.close()

    async def acl_users(self) -> set[str]:
        client = aioredis.Redis.from_url(self.server.url, decode_responses=True)
        try:
            return set(await client.acl_users())
        finally:
            await client.aclose()

    async def has_access(self, ctx: GrantContext) -> bool:
        conn, reply = await self.login(self.creds[ctx.grant_id])
        try:
            if reply.startswith("-WRONGPASS"):
                return False
            assert reply == "+OK", reply
            return not (await conn.call("GET", "cache:x")).startswith("-")
        finally:
            await conn.close()

    async def held_at_target(self, ctx: GrantContext) -> list[str]:
        name = login_name(ctx.grant_id)
        return [f"ACL user {name}"] if name in await self.acl_users() else []

    async def expire_at_target(self, ctx: GrantContext) -> None:
        """An administrator deletes the ACL user (Redis has no expiry of its own here)."""
        assert await self.admin("ACL", "DELUSER", login_name(ctx.grant_id)) == ":1"

    async def foreign_access(self) -> Callable[[], Awaitable[bool]]:
        """An ACL user an administrator made."""
        name = unique("gbtest_app")
        assert (
            await self.admin("ACL", "SETUSER", name, "on", ">app-pw", "~cache:*", "+get") == "+OK"
        )

        async def still_there() -> bool:
            return name in await self.acl_users()

        return still_there

    async def open_session(self, ctx: GrantContext) -> Session:
        conn, reply = await self.login(self.creds[ctx.grant_id])
        assert reply == "+OK", reply
        assert not (await conn.call("GET", "cache:x")).startswith("-")  # in use
        return conn

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        await asyncio.to_thread(self.server.stop, keep_data=True)
        try:
            yield
        finally:
            await asyncio.to_thread(self.server.start)


@contextlib.asynccontextmanager
async def redis_acl_target(server: RedisServer) -> AsyncIterator[RedisAclTarget]:
    provider = build_provider(
        {"type": "redis_acl", "url": "${GB_TEST_REDIS_URL}"},
        env={"GB_TEST_REDIS_URL": server.url},
    )
    target = RedisAclTarget(provider=provider, server=server)
    try:
        yield target
    finally:
        await target.aclose()


# -- ssh_cert --------------------------------------------------------------------------------


@dataclass
class SshCA:
    """A CA key, a KRL (in ``state/``, the shared storage the provider needs) and an sshd
    trusting both."""

    dir: Path
    key: Path
    krl: Path
    sshd: SshServer

    def settings(self) -> SSHCertSettings:
        return SSHCertSettings(ca_key_file=str(self.key), krl_file=str(self.krl))

    def provider(self, **kw: Any) -> SSHCertProvider:
        return SSHCertProvider(self.settings(), **kw)

    def ctx(self, key: Path, **kw: Any) -> GrantContext:
        return make_ctx(
            role_settings={"principals": [self.sshd.user]},
            ssh_public_key=key.with_suffix(".pub").read_text(),
            **kw,
        )

    def verdict(self, cert: Path) -> str:
        """``ok`` or ``REVOKED``: what ``ssh-keygen -Q`` says of ``cert`` against the KRL."""
        return ssh_keygen("-Q", "-f", str(self.krl), str(cert)).stdout.strip().rsplit(" ", 1)[-1]


def start_ssh_ca(directory: Path) -> SshCA:
    """Make a CA and an empty KRL in ``directory`` and start an sshd trusting both."""
    key = directory / "ca"
    made = ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", "test-ca", "-f", str(key))
    assert made.returncode == 0, made.stderr
    (directory / "state").mkdir()
    krl = directory / "state" / "revoked.krl"
    assert ssh_keygen("-k", "-f", str(krl)).returncode == 0
    sshd = SshServer(directory=directory, ca_public_key=key.with_suffix(".pub"), krl_file=krl)
    return SshCA(dir=directory, key=key, krl=krl, sshd=sshd.start())


def save_cert(key: Path, cred: Credential, name: str) -> Path:
    """The credential's certificate, written where ssh finds it for ``key``."""
    path = key.parent / f"{key.name}-{name}.pub"
    path.write_text((cred.get("certificate") or "") + "\n")
    return path


@dataclass(kw_only=True)
class SshCertTarget(Target):
    """Certificates from one CA, proven against a real sshd; the provider's clock can be
    moved past a certificate's validity (sshd keeps real time)."""

    kind: ClassVar[str] = "ssh_cert"
    check_asks_target: ClassVar[bool] = False

    ca: SshCA
    key: Path
    clock: AheadClock
    certs: dict[str, Path] = field(default_factory=dict)

    def ctx(self, *, user: str = "U0REQUEST", ttl_s: float = 1800.0) -> GrantContext:
        ctx = self.ca.ctx(self.key, user=user, ttl_s=ttl_s)
        self.issued.append(ctx)
        return ctx

    async def issue(self, ctx: GrantContext) -> Credential:
        cred = await super().issue(ctx)
        self.certs[ctx.grant_id] = save_cert(self.key, cred, ctx.grant_id)
        return cred

    async def has_access(self, ctx: GrantContext) -> bool:
        login = await asyncio.to_thread(self.ca.sshd.login, self.key, self.certs[ctx.grant_id])
        if login.returncode == 0:
            return True
        assert "Permission denied" in login.stderr, login.stderr
        return False

    async def held_at_target(self, ctx: GrantContext) -> list[str]:
        cert = self.certs.get(ctx.grant_id)
        if cert is None or ctx.expires_at <= self.clock() or self.ca.verdict(cert) != "ok":
            return []
        return [f"certificate serial {cert_serial(ctx.grant_id)}"]

    async def expire_at_target(self, ctx: GrantContext) -> None:
        """The certificate's validity (and the skew allowance) ends."""
        self.clock.offset = ctx.expires_at - time.time() + CLOCK_SKEW_S + 1

    async def foreign_access(self) -> Callable[[], Awaitable[bool]]:
        """A certificate an administrator signed with the same CA, for another key."""
        other = new_user_key(self.key.parent, f"other-{secrets.token_hex(3)}")
        signed = ssh_keygen(
            "-q", "-s", str(self.ca.key), "-I", "ops", "-n", self.ca.sshd.user,
            "-z", "999999", "-V", "+1h", str(other.with_suffix(".pub")),
        )  # fmt: skip
        assert signed.returncode == 0, signed.stderr
        cert = other.parent / f"{other.name}-cert.pub"

        async def still_there() -> bool:
            login = await asyncio.to_thread(self.ca.sshd.login, other, cert)
            return login.returncode == 0

        return still_there

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        """The KRL's directory (shared storage) is not there."""
        state, away = self.ca.krl.parent, self.ca.krl.parent.with_name("state-away")
        state.rename(away)
        try:
            yield
        finally:
            away.rename(state)


@contextlib.asynccontextmanager
async def ssh_cert_target(ca: SshCA, directory: Path) -> AsyncIterator[SshCertTarget]:
    clock = AheadClock()
    target = SshCertTarget(
        provider=ca.provider(clock=clock), ca=ca, key=new_user_key(directory), clock=clock
    )
    try:
        yield target
    finally:
        clock.offset = 0.0
        await target.aclose()


# -- webhook ---------------------------------------------------------------------------------


def hook_provider(receiver: HookReceiver) -> Provider:
    return build_provider(
        {"type": "webhook", "url": receiver.url, "secret": "${GB_HOOK_SECRET}", **HOOK_FAST},
        env={"GB_HOOK_SECRET": HOOK_SECRET},
    )


@dataclass(kw_only=True)
class WebhookTarget(Target):
    """A receiver that grants access itself on grantbot's signed events."""

    kind: ClassVar[str] = "webhook"
    check_asks_target: ClassVar[bool] = False

    receiver: HookReceiver
    role_settings: dict[str, Any] = field(default_factory=lambda: {"data": {"team": "payments"}})
    others: list[Provider] = field(default_factory=list)

    async def has_access(self, ctx: GrantContext) -> bool:
        return self.receiver.holds(ctx.grant_id)

    async def held_at_target(self, ctx: GrantContext) -> list[str]:
        return [f"access for {ctx.grant_id}"] if self.receiver.holds(ctx.grant_id) else []

    async def expire_at_target(self, ctx: GrantContext) -> None:
        self.receiver.expire(ctx.grant_id)

    async def foreign_access(self) -> Callable[[], Awaitable[bool]]:
        """A grant another grantbot replica sent to the same receiver."""
        other = hook_provider(self.receiver)
        self.others.append(other)
        ctx = make_ctx(role_settings={})
        await other.issue(ctx, now=time.time())

        async def still_there() -> bool:
            return self.receiver.holds(ctx.grant_id)

        return still_there

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        await self.receiver.stop()
        try:
            yield
        finally:
            await self.receiver.start()

    async def aclose(self) -> None:
        for other in self.others:
            await other.aclose()
        await super().aclose()


@contextlib.asynccontextmanager
async def webhook_target() -> AsyncIterator[WebhookTarget]:
    receiver = await HookReceiver().start()
    target = WebhookTarget(provider=hook_provider(receiver), receiver=receiver)
    try:
        yield target
    finally:
        await target.aclose()
        await receiver.stop()


# -- aws_sts and aws_identity_center -----------------------------------------------------------


@dataclass(kw_only=True)
class AwsTarget(Target):
    """An AWS provider on moto, its books in grantbot's Redis."""

    keeps_books: ClassVar[bool] = True

    moto: MotoServer
    state: ProviderState
    email: str

    def ctx(
        self, *, user: str = "U0REQUEST", ttl_s: float = 1800.0, email: str | None = None
    ) -> GrantContext:
        ctx = GrantContext(
            grant_id=new_grant_id(),
            user=user,
            resource="aws-test",
            role="admin",
            role_settings=self.role_settings,
            expires_at=time.time() + ttl_s,
            email=email or self.email,
        )
        self.issued.append(ctx)
        return ctx

    def provision_again(self) -> None:
        """After a restart of moto (which forgets everything), recreate what AWS would have
        kept while it was unreachable (moto re-seeds on start: the same calls give the same
        ids)."""
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        self.moto.stop()
        try:
            yield
        finally:
            self.moto.start()
            self.provision_again()


@dataclass(kw_only=True)
class StsTarget(AwsTarget):
    """aws_sts: a session per grant. moto does not enforce deny policies or expiry, so
    "access" is "the credentials authenticate as the grant's session, they have not
    expired by the provider's clock, and no deny policy names the session"."""

    kind: ClassVar[str] = "aws_sts"
    secret_fields: ClassVar[int] = 4

    role_arn: str
    clock: AheadClock

    def _live(self, ctx: GrantContext) -> bool:
        cred = self.creds.get(ctx.grant_id)
        if cred is None or cred.expires_at <= self.clock():
            return False
        return deny_statement(self.moto, self.role_arn, ctx.grant_id) is None

    async def has_access(self, ctx: GrantContext) -> bool:
        cred = self.creds.get(ctx.grant_id)
        if cred is None:
            return False
        me = session_client("sts", self.moto, cred).get_caller_identity()
        assert me["Arn"].endswith(f"/{ctx.grant_id}")  # the session is named after the grant
        return self._live(ctx)

    async def held_at_target(self, ctx: GrantContext) -> list[str]:
        return [f"session {self.creds[ctx.grant_id].ref}"] if self._live(ctx) else []

    async def expire_at_target(self, ctx: GrantContext) -> None:
        """The credentials reach their expiry (the provider's clock moves past it)."""
        self.clock.offset = ctx.expires_at - time.time() + 60

    async def foreign_access(self) -> Callable[[], Awaitable[bool]]:
        """Another session of the role, made at the console."""
        self.moto.client("sts").assume_role(RoleArn=self.role_arn, RoleSessionName="ops-console")
        role = self.role_arn.rsplit("/", 1)[-1]

        async def untouched() -> bool:
            """No policy on the role names the other session."""
            iam = self.moto.client("iam")
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                if "ops-console" in json.dumps(doc):
                    return False
            return True

        return untouched

    def provision_again(self) -> None:
        make_role(self.moto, name=self.role_arn.rsplit("/", 1)[-1])

    async def aclose(self) -> None:
        self.clock.offset = 0.0
        await super().aclose()


@dataclass(kw_only=True)
class IdentityCenterTarget(AwsTarget):
    """aws_identity_center: an account assignment per user, permission set and account,
    shared by that user's overlapping grants."""

    kind: ClassVar[str] = "aws_identity_center"
    shares_access: ClassVar[bool] = True

    ic: IdentityCenter
    user_id: str

    async def has_access(self, ctx: GrantContext) -> bool:
        return self.ic.assigned(self.user_id) > 0

    async def held_at_target(self, ctx: GrantContext) -> list[str]:
        held = ["assignment"] if self.ic.assigned(self.user_id) else []
        return held + (["books"] if await self.state.get(ctx.grant_id) is not None else [])

    async def expire_at_target(self, ctx: GrantContext) -> None:
        """An administrator removes the assignment."""
        self.ic.unassign(self.user_id)

    async def foreign_access(self) -> Callable[[], Awaitable[bool]]:
        """The permission set assigned to another user by an administrator."""
        other = self.ic.add_user(f"other-{secrets.token_hex(3)}@example.com")
        self.ic.assign(other)
        ic = self.ic

        async def still_there() -> bool:
            return ic.assigned(other) == 1

        return still_there

    def provision_again(self) -> None:
        """The instance, permission set and user again, and the assignment grantbot made."""
        ic = identity_center(self.moto)
        assert (ic.instance_arn, ic.permission_set_arn) == (
            self.ic.instance_arn,
            self.ic.permission_set_arn,
        )
        assert ic.add_user(self.email) == self.user_id
        ic.assign(self.user_id)
        assert ic.assigned(self.user_id) == 1


def make_aws_target(kind: str, moto: MotoServer, redis: aioredis.Redis, keys: Keys) -> AwsTarget:
    """A harness for ``kind`` (aws_sts or aws_identity_center) on ``moto``, with a fresh
    role or permission set and requester."""
    state = provider_state(redis, keys, kind)
    email = f"req-{secrets.token_hex(4)}@example.com"
    if kind == StsTarget.kind:
        role_arn, clock = make_role(moto), AheadClock()
        return StsTarget(
            provider=sts_provider(moto, state, clock),
            role_settings={"role_arn": role_arn},
            moto=moto,
            state=state,
            email=email,
            role_arn=role_arn,
            clock=clock,
        )
    ic = identity_center(moto)
    return IdentityCenterTarget(
        provider=ic_provider(moto, state),
        role_settings=ic.role_settings(),
        moto=moto,
        state=state,
        email=email,
        ic=ic,
        user_id=ic.add_user(email),
    )


@contextlib.asynccontextmanager
async def aws_target(
    kind: str, moto: MotoServer, redis: aioredis.Redis, keys: Keys
) -> AsyncIterator[AwsTarget]:
    target = make_aws_target(kind, moto, redis, keys)
    try:
        yield target
    finally:
        await target.aclose()
