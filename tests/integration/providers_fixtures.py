"""Helpers for the provider tests: real servers started on private ports, and small builders.

Everything here is real: a private PostgreSQL cluster with SCRAM authentication (initdb +
pg_ctl, run as the ``postgres`` OS user when we are root, since initdb refuses root), a real
``sshd`` trusting a test CA, and plain contexts for grants. Nothing skips: a missing binary or
service fails the test that needs it.
"""

from __future__ import annotations

import getpass
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

from bot.devtools.redis_server import free_port
from bot.domain.ids import new_grant_id
from bot.providers.base import GrantContext

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

    def stop(self) -> None:
        try:
            self._run([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
        finally:
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
