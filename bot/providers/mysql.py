"""MySQL and MariaDB: one account ``'gb_<grant>'@'<account_host>'`` per grant.

Issue creates the account with a random password and the policy's GRANTs (validated strictly,
see :mod:`bot.providers.mysql_grants`); a re-issue resets the password of the same account.
Revoke drops the account (every host part of that user name) and KILLs each of its
connections, so an open session ends at once.

No target-side expiry: MariaDB has no per-account expiry time at all, and MySQL's
``PASSWORD EXPIRE`` only forces a password change (the user can still log in and set a new
one). **The bot's revocation is what ends this access**: the scheduler must revoke at
``expires_at``, and the reconciler must find accounts left behind (``live_grant_ids``).

The admin in ``dsn`` needs CREATE USER, the privileges it grants WITH GRANT OPTION, SELECT on
mysql.user and CONNECTION ADMIN/SUPER (or PROCESS + the right to KILL) to end sessions.
PyMySQL is blocking; each operation runs in a worker thread on its own connection.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar
from urllib.parse import quote

import pymysql
from pydantic import AfterValidator, Field, SecretStr, field_validator

from bot.domain.credentials import REDACTED, Credential
from bot.envrefs import has_reference
from bot.errors import ProviderError, TargetUnavailable
from bot.providers.base import (
    DatabaseSettings,
    GrantContext,
    ProviderSettings,
    ensure_not_expired,
    scrub,
)
from bot.providers.logins import login_credential
from bot.providers.mysql_dsn import admin_args, dsn_options
from bot.providers.mysql_grants import MySQLGrant, parse_grant
from bot.providers.naming import LOGIN_LIKE, grant_id_from_login, login_name
from bot.providers.passwords import new_password
from bot.providers.validation import parse_role_settings

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds to wait for the per-login lock that serialises issue/revoke of one grant.
LOCK_WAIT_S: Final = 10
_DSN_SCHEMES: Final = frozenset({"mysql", "mariadb"})
_ACCOUNT_HOST_RE: Final = re.compile(r"^[A-Za-z0-9.%_:-]{1,255}$")
# Client error codes that mean "server unreachable": can't connect (2002/2003), server gone
# (2006), lost connection (2013), too many connections (1040), shutdown in progress (1053).
_UNAVAILABLE_CODES: Final = frozenset({1040, 1053, 2002, 2003, 2006, 2013})
_UNKNOWN_THREAD: Final = 1094  # KILL of a connection that ended meanwhile
EXPIRY_NOTE: Final = (
    "MySQL/MariaDB accounts have no expiry of their own: grantbot revokes this one at {at}"
)


def _text(value: object) -> str:
    """A column value as str (some servers return binary-collated names as bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


class MySQLSettings(DatabaseSettings):
    """Resource-level settings: the admin ``dsn`` (``mysql://user:password@host:port/db``)
    and what the requester is told to use."""

    DSN_SCHEMES: ClassVar[frozenset[str]] = _DSN_SCHEMES
    DSN_FORM: ClassVar[str] = "mysql://user:password@host:port/db"

    type: Literal["mysql"] = "mysql"
    #: Host part of created accounts ('%' = from anywhere the server's network allows).
    account_host: str = "%"

    @field_validator("dsn")
    @classmethod
    def _dsn_options(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if not has_reference(raw):
            dsn_options(raw)  # TLS and RSA key options: a bad one is a policy check finding
        return v

    @field_validator("account_host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not _ACCOUNT_HOST_RE.match(v):
            raise ValueError("must be a host name, address or pattern ([A-Za-z0-9.%_:-])")
        return v


def _normalized_grant(text: str) -> str:
    return str(parse_grant(text))


GrantString = Annotated[str, AfterValidator(_normalized_grant)]


class MySQLRoleSettings(ProviderSettings):
    """Role-level settings: the grants, e.g. ``["SELECT ON billing.*"]``."""

    grants: list[GrantString] = Field(min_length=1)

    def parsed(self) -> list[MySQLGrant]:
        return [parse_grant(g) for g in self.grants]


class MySQLProvider:
    """One account per grant; see the module docstring for the full contract."""

    type: ClassVar[str] = "mysql"

    def __init__(self, settings: MySQLSettings) -> None:
        self.settings = settings
        self._admin_args: dict[str, Any] = admin_args(
            settings.dsn.get_secret_value(), connect_timeout_s=settings.connect_timeout_s
        )
        self.host = settings.host or self._admin_args["host"]
        self.port = settings.port or self._admin_args["port"]
        self.dbname = settings.dbname or self._admin_args["database"]

    # -- plumbing ------------------------------------------------------------------------

    async def _run(self, action: str, fn: Callable[[Any], T], *, secrets: list[str]) -> T:
        """Run ``fn(cursor)`` in a thread on a fresh admin connection, translating errors."""
        try:
            return await asyncio.to_thread(self._with_cursor, fn)
        except ProviderError:
            raise
        except (OSError, pymysql.MySQLError) as e:
            code = e.args[0] if e.args and isinstance(e.args[0], int) else None
            text = scrub(f"{type(e).__name__}: {e}", secrets)
            unavailable = isinstance(e, OSError) or code in _UNAVAILABLE_CODES
            cls = TargetUnavailable if unavailable else ProviderError
            error = cls(f"mysql: {action} failed: {text}")
            if REDACTED in text:
                raise error from None  # the cause's message carries the password
            raise error from e

    def _with_cursor(self, fn: Callable[[Any], T]) -> T:
        conn = pymysql.connect(**self._admin_args)
        try:
            with conn.cursor() as cur:
                return fn(cur)
        finally:
            conn.close()

    @staticmethod
    @contextmanager
    def _locked(cur: Any, name: str) -> Iterator[None]:
        """A server-side named lock: concurrent issue/revoke of one grant run one at a time."""
        cur.execute("SELECT GET_LOCK(%s, %s)", (f"grantbot:{name}", LOCK_WAIT_S))
        row = cur.fetchone()
        if not row or row[0] != 1:
            raise TargetUnavailable(f"mysql: lock for {name} is busy; retry")
        try:
            yield
        finally:
            cur.execute("SELECT RELEASE_LOCK(%s)", (f"grantbot:{name}",))

    # -- the contract --------------------------------------------------------------------

    async def issue(self, ctx: GrantContext, *, now: float) -> Credential:
        ensure_not_expired(ctx, now=now)
        name = login_name(ctx.grant_id)
        grants = parse_role_settings(MySQLRoleSettings, ctx).parsed()
        password = new_password()
        account_host = self.settings.account_host

        def work(cur: Any) -> bool:
            with self._locked(cur, name):
                cur.execute(
                    "SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", (name, account_host)
                )
                existed = cur.fetchone() is not None
                verb = "ALTER USER" if existed else "CREATE USER"
                cur.execute(f"{verb} %s@%s IDENTIFIED BY %s", (name, account_host, password))
                for grant in grants:
                    cur.execute(grant.statement(), (name, account_host))
                return existed

        existed = await self._run("issue", work, secrets=[password])
        log.info(
            "mysql: %s account %s@%s for grant %s",
            "re-issued" if existed else "issued",
            name,
            account_host,
            ctx.grant_id,
        )
        return self._credential(name, password, ctx.expires_at)

    def _credential(self, name: str, password: str, expires_at: float) -> Credential:
        db = self.dbname or ""
        return login_credential(
            name,
            password,
            expires_at=expires_at,
            where=[
                ("host", str(self.host)),
                ("port", str(self.port)),
                *([("database", db)] if db else []),
            ],
            url_label="connection string",
            url=f"mysql://{name}:{quote(password, safe='')}@{self.host}:{self.port}/{quote(db)}",
            expiry_note=EXPIRY_NOTE,
        )

    async def revoke(self, ctx: GrantContext) -> None:
        name = login_name(ctx.grant_id)

        def work(cur: Any) -> tuple[int, int]:
            with self._locked(cur, name):
                # Drop first, then kill: a killed client cannot log back in. Every host part
                # goes, in case account_host changed since the grant was issued.
                cur.execute("SELECT Host FROM mysql.user WHERE User = %s", (name,))
                hosts = [_text(row[0]) for row in cur.fetchall()]
                for host in hosts:
                    cur.execute("DROP USER IF EXISTS %s@%s", (name, host))
                # Runs even when the account was already gone: a crash between the two steps
                # must not leave a session open.
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (name,)
                )
                killed = 0
                for (thread_id,) in cur.fetchall():
                    try:
                        cur.execute("KILL CONNECTION %s", (int(thread_id),))
                        killed += 1
                    except pymysql.MySQLError as e:
                        if not (e.args and e.args[0] == _UNKNOWN_THREAD):
                            raise
                return len(hosts), killed

        dropped, killed = await self._run("revoke", work, secrets=[])
        if dropped or killed:
            log.info(
                "mysql: revoked account %s for grant %s (%d session(s) killed)",
                name,
                ctx.grant_id,
                killed,
            )
        else:
            log.info("mysql: account %s already gone (grant %s)", name, ctx.grant_id)

    async def check(self, ctx: GrantContext) -> bool:
        name = login_name(ctx.grant_id)

        def work(cur: Any) -> bool:
            cur.execute("SELECT 1 FROM mysql.user WHERE User = %s LIMIT 1", (name,))
            return cur.fetchone() is not None

        return await self._run("check", work, secrets=[])

    async def live_grant_ids(self) -> set[str]:
        """Grant ids of every grantbot account that still exists."""

        def work(cur: Any) -> list[str]:
            cur.execute("SELECT DISTINCT User FROM mysql.user WHERE User LIKE %s", (LOGIN_LIKE,))
            return [_text(row[0]) for row in cur.fetchall()]

        names = await self._run("list accounts", work, secrets=[])
        ids = (grant_id_from_login(n) for n in names)
        return {i for i in ids if i is not None}

    async def health(self) -> None:
        def work(cur: Any) -> None:
            cur.execute("SELECT 1")
            cur.fetchone()

        await self._run("health check", work, secrets=[])

    async def aclose(self) -> None:
        """Nothing to release: each operation uses its own connection."""
