"""PostgreSQL: one LOGIN role per grant, member of the roles the policy names.

Issue creates ``gb_<grant>`` with a random password (sent as a SCRAM verifier, never in clear)
and ``VALID UNTIL`` the grant's expiry, so PostgreSQL itself refuses new password logins after
expiry even if the bot is dead. Revoke blocks new logins (NOLOGIN), ends the role's sessions
(``pg_terminate_backend``), hands anything it owns to the admin (REASSIGN OWNED), drops its
privileges (DROP OWNED) and drops the role.

Requirements at the target: PostgreSQL >= 14 (``pg_terminate_backend(pid, timeout)``); the admin
in ``dsn`` is a superuser, or has CREATEROLE, membership in ``pg_signal_backend`` and ADMIN on
the granted roles. REASSIGN/DROP OWNED act on the admin DSN's database only: objects the login
created in another database make DROP ROLE fail, which is reported as a ProviderError (the
role is left NOLOGIN, so it cannot be used meanwhile).

Note: ``VALID UNTIL`` limits password authentication only; a pg_hba ``trust`` line ignores it,
which is why revocation at expiry is still scheduled.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Final, Literal
from urllib.parse import quote, unquote, urlsplit

import asyncpg
from pydantic import AfterValidator, Field

from bot.domain.credentials import Credential
from bot.errors import ProviderError
from bot.providers.base import (
    DatabaseSettings,
    GrantContext,
    ProviderSettings,
    ensure_not_expired,
    target_errors,
)
from bot.providers.logins import login_credential
from bot.providers.naming import LOGIN_LIKE, LOGIN_PREFIX, grant_id_from_login, login_name
from bot.providers.passwords import new_password
from bot.providers.scram import scram_sha256_verifier
from bot.providers.validation import parse_role_settings

log = logging.getLogger(__name__)

#: How long revoke waits for each terminated backend to exit before moving on.
TERMINATE_WAIT_MS: Final = 5_000
DEFAULT_PORT: Final = 5432
#: Lower-case unquoted identifiers only: what a policy author means by `orders_read`.
_ROLE_NAME_RE: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Roles a policy may never hand out: grantbot's own logins, built-in pg_* roles (e.g.
#: pg_execute_server_program runs shell commands), and the bootstrap superuser / PUBLIC.
_FORBIDDEN_PREFIXES: Final = (LOGIN_PREFIX, "pg_")
_FORBIDDEN_NAMES: Final = frozenset({"postgres", "public"})
_DSN_SCHEMES: Final = frozenset({"postgres", "postgresql"})

# Errors meaning "could not reach or lost the server": retry later.
_UNAVAILABLE: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,  # incl. the connection closed under us
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
)


class PostgresSettings(DatabaseSettings):
    """Resource-level settings: the admin ``dsn`` (``postgresql://user:password@host:port/db``)
    and what the requester is told to use."""

    DSN_SCHEMES: ClassVar[frozenset[str]] = _DSN_SCHEMES
    DSN_FORM: ClassVar[str] = "postgresql://user:password@host:port/dbname"

    type: Literal["postgres"] = "postgres"


def _check_role_name(name: str) -> str:
    if not _ROLE_NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a plain lower-case role name ([a-z_][a-z0-9_]*)")
    if name.startswith(_FORBIDDEN_PREFIXES) or name in _FORBIDDEN_NAMES:
        raise ValueError(f"{name!r} may not be granted (gb_*, pg_*, postgres, public are refused)")
    return name


RoleName = Annotated[str, AfterValidator(_check_role_name)]


class PostgresRoleSettings(ProviderSettings):
    """Role-level settings: the group roles the login becomes a member of."""

    grant_roles: list[RoleName] = Field(min_length=1)


def _translated(action: str) -> AbstractAsyncContextManager[None]:
    """asyncpg errors become TargetUnavailable (unreachable) or ProviderError (refused)."""
    return target_errors(
        "postgres", action, unreachable=_UNAVAILABLE, refused=(asyncpg.PostgresError,)
    )


async def _sql(conn: Any, template: str, *args: str) -> str:
    """``template`` with %I/%L filled by the server's own format() quoting.

    Utility statements (CREATE ROLE, GRANT...) take no bind parameters; letting PostgreSQL
    quote identifiers and literals is the one quoting that is right by construction.
    """
    params = "".join(f", ${i}::text" for i in range(2, len(args) + 2))
    text: str = await conn.fetchval(f"SELECT format($1::text{params})", template, *args)
    return text


def _timestamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat()


class PostgresProvider:
    """One LOGIN role per grant; see the module docstring for the full contract."""

    type: ClassVar[str] = "postgres"

    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings
        parts = urlsplit(settings.dsn.get_secret_value())
        self.host = settings.host or parts.hostname or "localhost"
        self.port = settings.port or parts.port or DEFAULT_PORT
        self.dbname = settings.dbname or unquote(parts.path.lstrip("/")) or "postgres"

    @asynccontextmanager
    async def _admin(self, action: str) -> AsyncIterator[Any]:
        """A fresh admin connection for one operation (issue/revoke are rare; no pool to go
        stale across target restarts)."""
        async with _translated(action):
            conn = await asyncpg.connect(
                self.settings.dsn.get_secret_value(), timeout=self.settings.connect_timeout_s
            )
            try:
                yield conn
            finally:
                conn.terminate()  # no graceful close: nothing is pending, and it cannot hang

    async def issue(self, ctx: GrantContext, *, now: float) -> Credential:
        ensure_not_expired(ctx, now=now)
        name = login_name(ctx.grant_id)
        roles = parse_role_settings(PostgresRoleSettings, ctx).grant_roles
        password = new_password()
        async with self._admin("issue") as conn, conn.transaction():
            # Serialises concurrent issue/revoke of one grant, so a re-issue is one login.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", name)
            await self._check_grantable(conn, roles)
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
            # NOSUPERUSER etc. only on CREATE: ALTER with them needs superuser, and a role we
            # created never had them.
            verb = (
                "ALTER ROLE %I WITH"
                if exists
                else ("CREATE ROLE %I WITH NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT")
            )
            await conn.execute(
                await _sql(
                    conn,
                    verb + " LOGIN PASSWORD %L VALID UNTIL %L",
                    name,
                    scram_sha256_verifier(password),
                    _timestamp(ctx.expires_at),
                )
            )
            placeholders = ", ".join(["%I"] * len(roles))
            await conn.execute(await _sql(conn, f"GRANT {placeholders} TO %I", *roles, name))
            note = f"grantbot {ctx.grant_id} for {ctx.user} ({ctx.resource}/{ctx.role})"
            await conn.execute(await _sql(conn, "COMMENT ON ROLE %I IS %L", name, note))
        log.info(
            "postgres: %s login %s for grant %s",
            "re-issued" if exists else "issued",
            name,
            ctx.grant_id,
        )
        return self._credential(name, password, ctx.expires_at)

    async def _check_grantable(self, conn: Any, roles: list[str]) -> None:
        rows = await conn.fetch(
            "SELECT rolname, rolsuper FROM pg_roles WHERE rolname = ANY($1::text[])", roles
        )
        found = {r["rolname"]: r["rolsuper"] for r in rows}
        missing = [r for r in roles if r not in found]
        if missing:
            raise ProviderError(f"postgres: role(s) to grant do not exist: {', '.join(missing)}")
        supers = [r for r, is_super in found.items() if is_super]
        if supers:
            raise ProviderError(
                f"postgres: refusing to grant superuser role(s): {', '.join(supers)}"
            )

    def _credential(self, name: str, password: str, expires_at: float) -> Credential:
        url = (
            f"postgresql://{name}:{quote(password, safe='')}@{self.host}:{self.port}/"
            f"{quote(self.dbname, safe='')}"
        )
        return login_credential(
            name,
            password,
            expires_at=expires_at,
            where=[("host", self.host), ("port", str(self.port)), ("dbname", self.dbname)],
            url_label="connection string",
            url=url,
        )

    async def revoke(self, ctx: GrantContext) -> None:
        name = login_name(ctx.grant_id)
        async with self._admin("revoke") as conn:
            # 1. No new logins; committed first so nobody slips in while sessions are ended.
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", name)
                if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
                    log.info("postgres: login %s already gone (grant %s)", name, ctx.grant_id)
                    return
                await conn.execute(await _sql(conn, "ALTER ROLE %I NOLOGIN", name))
            # 2. End its sessions, waiting for each backend to exit.
            ended = await conn.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, $2) FROM "
                "pg_stat_activity WHERE usename = $1) AS t",
                name,
                TERMINATE_WAIT_MS,
            )
            # 3. Hand over what it owns, drop its privileges, drop it.
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", name)
                if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
                    await conn.execute(
                        await _sql(conn, "REASSIGN OWNED BY %I TO CURRENT_USER", name)
                    )
                    await conn.execute(await _sql(conn, "DROP OWNED BY %I", name))
                    await conn.execute(await _sql(conn, "DROP ROLE %I", name))
        log.info(
            "postgres: revoked login %s for grant %s (%s session(s) ended)",
            name,
            ctx.grant_id,
            ended,
        )

    async def check(self, ctx: GrantContext) -> bool:
        name = login_name(ctx.grant_id)
        async with self._admin("check") as conn:
            live = await conn.fetchval(
                "SELECT rolcanlogin AND (rolvaliduntil IS NULL OR rolvaliduntil > now()) "
                "FROM pg_roles WHERE rolname = $1",
                name,
            )
        return bool(live)

    async def live_grant_ids(self) -> set[str]:
        """Grant ids of every grantbot login that still exists, expired or not."""
        async with self._admin("list logins") as conn:
            rows = await conn.fetch(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", LOGIN_LIKE
            )
        ids = (grant_id_from_login(r["rolname"]) for r in rows)
        return {i for i in ids if i is not None}

    async def health(self) -> None:
        async with self._admin("health check") as conn:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), self.settings.connect_timeout_s)

    async def aclose(self) -> None:
        """Nothing to release: each operation uses its own connection."""
