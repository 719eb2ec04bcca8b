"""Helpers for the provider tests: real targets started on private ports, and small builders.

Everything here is real: a private PostgreSQL cluster with SCRAM authentication (initdb +
pg_ctl, run as the ``postgres`` OS user when we are root, since initdb refuses root), a
private MariaDB server, a real ``sshd`` trusting a test CA, a webhook receiver that checks
signatures, and plain contexts for grants. A test that needs a system binary says so with
``pytest.mark.needs`` (tests/system.py).
"""

from __future__ import annotations

import getpass
import glob
import hashlib
import hmac
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pymysql
import pytest
from aiohttp import web

from bot.devtools.redis_server import free_port
from bot.domain.ids import new_grant_id
from bot.providers.base import GrantContext
from bot.providers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER

#: The machine's PostgreSQL and MariaDB (trust / empty-password admin), overridable for CI.
PG_ADMIN_DSN = os.environ.get("GRANTBOT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN_DSN = os.environ.get("GRANTBOT_TEST_MYSQL_DSN", "mysql://root@127.0.0.1:3306/test")
_START_TIMEOUT_S = 30


def make_ctx(
    *,
    role_settings: dict[str, Any],
    ttl_s: float = 600.0,
    user: str = "U0REQUEST",
    grant_id: str | None = None,
    ssh_public_key: str | None = None,
) -> GrantContext:
    """A context for a fresh grant (unique id) expiring ``ttl_s`` from now."""
    return GrantContext(
        grant_id=grant_id or new_grant_id(),
        user=user,
        resource="test-resource",
        role="read",
        role_settings=role_settings,
        expires_at=time.time() + ttl_s,
        ssh_public_key=ssh_public_key,
    )


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    return free_port()


def unique(prefix: str) -> str:
    """A lower-case identifier unique to this test run, e.g. ``gbtest_k3p9xq``."""
    return f"{prefix}_{secrets.token_hex(4)}"


def assert_secrets_not_logged(caplog: pytest.LogCaptureFixture, values: Sequence[str]) -> None:
    """No secret appears in any captured record's message, arguments or exception text."""
    assert caplog.records, "expected the provider to log something"
    handler_text = caplog.text
    for record in caplog.records:
        rendered = record.getMessage() + repr(record.args) + str(record.exc_info or "")
        for value in values:
            assert value not in rendered, f"secret leaked in log record {record.name}"
    for value in values:
        assert value not in handler_text


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(f"{name} not found: install PostgreSQL server binaries")
    return found


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port with ``scram-sha-256`` for every login.

    The machine's own server trusts every local connection, so it cannot prove a password;
    this one can. ``dsn`` is the superuser's (password auth too).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.dir = Path(tempfile.mkdtemp(prefix="grantbot-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        cmd = ["runuser", "-u", "postgres", "--", *args] if self._as_postgres else args
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_START_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()[-500:]}")

    def start(self) -> Self:
        """Create the cluster (the first time) and start it; again after :meth:`stop` with
        ``keep_data``, the same cluster on the same port."""
        if not self.data.exists():
            self._init()
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            [
                _pg_bin("pg_ctl"),
                "-D", str(self.data),
                "-o", options,
                "-l", str(self.dir / "log"),
                "-w",
                "-t", str(_START_TIMEOUT_S),
                "start",
            ]
        )  # fmt: skip
        return self

    def _init(self) -> None:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run(
            [
                _pg_bin("initdb"),
                "-D", str(self.data),
                "-U", "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-sync",
            ]
        )  # fmt: skip

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the server at once; remove the cluster unless ``keep_data``."""
        try:
            self._run([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
        finally:
            if not keep_data:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _mariadb_bin(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or next(iter(glob.glob(f"/usr/sbin/{name}")), None)
        if found:
            return found
    raise RuntimeError(f"{names[0]} not found: install mariadb-server")


class PrivateMariaDB:
    """A throwaway MariaDB server on a free port (root, no password; a ``test`` database).

    The machine's server is shared with every other test run, so what grantbot finds there
    is not only this test's; on this one it is, and it can be stopped and started again
    (``stop(keep_data=True)``) to be a target that is down.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="grantbot-mariadb-"))
        self.data = self.dir / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_root = ["--user=root"] if os.geteuid() == 0 else []

    @property
    def dsn(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/test"

    def start(self) -> Self:
        """Create the server's data (the first time) and start it."""
        first = not self.data.exists()
        if first:
            done = subprocess.run(
                [
                    _mariadb_bin("mariadb-install-db", "mysql_install_db"),
                    "--no-defaults",
                    f"--datadir={self.data}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    *self._as_root,
                ],
                capture_output=True,
                text=True,
                timeout=_START_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"mariadb-install-db failed: {done.stderr.strip()[-500:]}")
        log = self.dir / "error.log"
        self.proc = subprocess.Popen(
            [
                _mariadb_bin("mariadbd", "mysqld"),
                "--no-defaults",
                f"--datadir={self.data}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.dir / 'sock'}",
                f"--pid-file={self.dir / 'pid'}",
                f"--log-error={log}",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
                *self._as_root,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {log.read_text()[-500:]}")
            try:
                conn = pymysql.connect(
                    host="127.0.0.1", port=self.port, user="root", password="", autocommit=True
                )
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("mariadbd did not start answering") from None
                time.sleep(0.05)
                continue
            with conn:
                if first:
                    conn.cursor().execute("CREATE DATABASE test")
            return self

    def stop(self, *, keep_data: bool = False) -> None:
        """Stop the server; remove its data unless ``keep_data``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if not keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


#: The shared secret the webhook tests sign with.
HOOK_SECRET = "whsec-test-0123456789abcdef"
#: How far the receiver lets a signed timestamp drift from its own clock.
HOOK_TOLERANCE_S = 300


@dataclass
class HookReceiver:
    """A real HTTP receiver of grantbot's webhook events, as an internal access service
    would run one: it checks every signature, records each verified delivery, answers with
    ``statuses`` in turn (then 200) and, for what it answered 2xx, holds access from a
    ``grant`` event until a ``revoke`` event or the grant's expiry."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    held: dict[str, float] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        expected = hmac.new(HOOK_SECRET.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
        signature = request.headers.get(SIGNATURE_HEADER, "")
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < HOOK_TOLERANCE_S
        if not (fresh and hmac.compare_digest(signature, f"v1={expected.hexdigest()}")):
            self.bad_signatures += 1
            return web.Response(status=401)
        event = json.loads(body)
        self.deliveries.append(event)
        status = self.statuses.pop(0) if self.statuses else 200
        if 200 <= status < 300:
            if event["event"] == "grant":
                self.held[event["grant_id"]] = float(event["expires_at"])
            else:
                self.held.pop(event["grant_id"], None)
        return web.Response(status=status)

    def holds(self, grant_id: str) -> bool:
        """Whether the service gives ``grant_id``'s holder access now."""
        return self.held.get(grant_id, 0.0) > time.time()

    def expire(self, grant_id: str) -> None:
        """The service ends the access itself, as at the grant's expiry."""
        self.held.pop(grant_id, None)

    async def start(self) -> Self:
        """Listen on 127.0.0.1 (the same port again after :meth:`stop`)."""
        app = web.Application()
        app.router.add_post("/hooks/access", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self._port).start()
        self._port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{self._port}/hooks/access"
        return self

    async def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


def ssh_keygen(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ssh-keygen with TZ=UTC (its -L output is in local time)."""
    return subprocess.run(
        ["ssh-keygen", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "TZ": "UTC"},
    )


def new_user_key(directory: Path, name: str = "id_ed25519") -> Path:
    """A fresh ed25519 key pair in ``directory``; returns the private key's path."""
    key = directory / name
    done = ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", "test-user", "-f", str(key))
    assert done.returncode == 0, done.stderr
    return key


class SshServer:
    """A real sshd on a free 127.0.0.1 port trusting one user CA and one KRL.

    Authentication is by certificate only (no authorized_keys, no passwords). Logins are as
    ``user`` (the OS user running the tests), which is the principal certificates must name.
    """

    def __init__(self, *, directory: Path, ca_public_key: Path, krl_file: Path) -> None:
        self.port = free_port()
        self.dir = directory
        self.user = getpass.getuser()
        self.log = directory / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        host_key = directory / "ssh_host_ed25519_key"
        done = ssh_keygen("-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
        assert done.returncode == 0, done.stderr
        self.config = directory / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {directory / 'sshd.pid'}",
                    f"TrustedUserCAKeys {ca_public_key}",
                    f"RevokedKeys {krl_file}",
                    "AuthorizedKeysFile none",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin yes",  # CI runs as root; certificates only
                    "StrictModes no",  # temp dirs are not the home directory layout sshd expects
                    "UsePAM no",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )

    def start(self) -> Self:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not Path(sshd).exists():
            raise RuntimeError("sshd not found: install openssh-server (.ci/run does)")
        if os.geteuid() == 0:
            # sshd's privilege separation needs this directory (normally made by systemd).
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        check = subprocess.run([sshd, "-t", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"sshd config invalid: {check.stderr}")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(self.config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()[-500:]}")
            if "Server listening" in self.log.read_text():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def login(self, key: Path, certificate: Path) -> subprocess.CompletedProcess[str]:
        """``ssh -i key -o CertificateFile=certificate user@127.0.0.1 echo logged-in``."""
        return subprocess.run(
            [
                "ssh",
                "-p", str(self.port),
                "-i", str(key),
                "-o", f"CertificateFile={certificate}",
                "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=10",
                f"{self.user}@127.0.0.1",
                "echo", "logged-in",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )  # fmt: skip
