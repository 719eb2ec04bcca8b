"""Real Redis in the shapes production runs it, on loopback: a master with replicas watched
by sentinels (:class:`SentinelGroup`), and a Redis Cluster (:class:`ClusterNodes`).

Every part is a real ``redis-server`` process (sentinels are ``redis-server --sentinel``),
for tests and benches that kill a master and watch what follows.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Self, TypeVar, cast

import redis as redis_sync

from bot.devtools.redis_server import RedisServer, Started, free_port
from bot.errors import ConfigError

MASTER_NAME: Final = "grantbot"
#: How long sentinels wait before calling a silent master down (production: 5-30 s).
DOWN_AFTER_MS: Final = 1000
_WAIT_S: Final = 30.0
T = TypeVar("T")


class SentinelServer(RedisServer):
    """One ``redis-server --sentinel`` watching ``master_port`` as :data:`MASTER_NAME`."""

    def __init__(self, *, master_port: int, quorum: int, down_after_ms: int = DOWN_AFTER_MS):
        super().__init__(appendonly=False)
        self.master_port = master_port
        self.quorum = quorum
        self.down_after_ms = down_after_ms

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "sentinel.conf"  # a sentinel rewrites its own config file
        config.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    f"dir {self.data_dir}",
                    f"logfile {self.data_dir / 'redis.log'}",
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} {self.quorum}",
                    f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}",
                    f"sentinel failover-timeout {MASTER_NAME} {self.down_after_ms * 10}",
                    f"sentinel parallel-syncs {MASTER_NAME} 2",
                    "",
                ]
            )
        )
        self._spawn([self.binary, str(config), "--sentinel"])
        return self


class SentinelGroup(Started):
    """A master, ``replicas`` replicas and ``sentinels`` sentinels, on loopback.

    ``url`` is the ``redis+sentinel://`` URL grantbot takes; :meth:`master_port` asks the
    sentinels which server is the master now; :meth:`kill_master` SIGKILLs it and
    :meth:`wait_for_new_master` returns once the sentinels name another one that answers as
    master.
    """

    def __init__(
        self, *, replicas: int = 2, sentinels: int = 3, down_after_ms: int = DOWN_AFTER_MS
    ) -> None:
        self.down_after_ms = down_after_ms
        # No wait before a full sync (Redis waits 5 s for more replicas to share one).
        fast_sync = ("--repl-diskless-sync-delay", "0")
        self.master = RedisServer(appendonly=True, extra_args=fast_sync)
        self.replicas = [
            RedisServer(appendonly=True, extra_args=fast_sync) for _ in range(replicas)
        ]
        self.sentinels: list[SentinelServer] = []
        self._sentinel_count = sentinels

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master, *self.replicas]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def start(self) -> Self:
        try:
            self.master.start()
            for replica in self.replicas:
                replica.replica_of = self.master.port
                replica.start()
            self._wait_replicas_linked()
            quorum = self._sentinel_count // 2 + 1
            for _ in range(self._sentinel_count):
                sentinel = SentinelServer(
                    master_port=self.master.port, quorum=quorum, down_after_ms=self.down_after_ms
                )
                self.sentinels.append(sentinel.start())
            self._wait(lambda: self._sentinels_know_all(), "sentinels to see every replica")
        except BaseException:
            self.stop()
            raise
        return self

    def master_port(self) -> int | None:
        """The master's port as the first answering sentinel names it."""
        for sentinel in self.sentinels:
            if not sentinel.alive:
                continue
            with contextlib.suppress(redis_sync.RedisError, OSError):
                client = redis_sync.Redis(port=sentinel.port, socket_timeout=1.0)
                try:
                    reply = client.sentinel_get_master_addr_by_name(MASTER_NAME)  # type: ignore[no-untyped-call]
                finally:
                    client.close()
                if reply:
                    return int(reply[1])
        return None

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def kill_master(self) -> RedisServer:
        """SIGKILL the current master (as a crash would); returns it."""
        port = self.master_port()
        if port is None:
            raise ConfigError("no sentinel names a master")
        victim = self.server_on(port)
        victim.kill()
        return victim

    def wait_for_new_master(self, old_port: int, *, timeout_s: float = _WAIT_S) -> int:
        """The port of the master the sentinels promoted in place of ``old_port``, once it
        answers as a master."""

        def promoted() -> int | None:
            port = self.master_port()
            if port is None or port == old_port or not _role_is_master(port):
                return None
            return port

        return self._wait(promoted, "a new master", timeout_s=timeout_s)

    def _wait_replicas_linked(self) -> None:
        def linked() -> bool:
            info = _info(self.master.port, "replication")
            states = [
                v.get("state")
                for k, v in info.items()
                if k.startswith("slave") and isinstance(v, dict)
            ]
            return states.count("online") >= len(self.replicas)

        self._wait(linked, "replicas to link to the master")

    def _sentinels_know_all(self) -> bool:
        for sentinel in self.sentinels:
            client = redis_sync.Redis(port=sentinel.port, socket_timeout=1.0)
            try:
                if len(client.sentinel_slaves(MASTER_NAME)) < len(self.replicas):  # type: ignore[no-untyped-call]
                    return False
            except (redis_sync.RedisError, OSError):
                return False
            finally:
                client.close()
        return True

    @staticmethod
    def _wait(check: Callable[[], T | None], what: str, *, timeout_s: float = _WAIT_S) -> T:
        return wait_until(check, what, timeout_s=timeout_s)

    def stop(self) -> None:
        for server in [*self.sentinels, *self.servers]:
            with contextlib.suppress(Exception):
                server.stop()


def wait_until(check: Callable[[], T | None], what: str, *, timeout_s: float = _WAIT_S) -> T:
    """Poll ``check`` until it returns something true; ConfigError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise ConfigError(f"timed out waiting for {what}")


def _info(port: int, section: str) -> dict[str, object]:
    client = redis_sync.Redis(port=port, socket_timeout=1.0, decode_responses=True)
    try:
        info = cast(dict[str, object], client.info(section))
        return info
    except (redis_sync.RedisError, OSError):
        return {}
    finally:
        client.close()


def _role_is_master(port: int) -> bool:
    return _info(port, "replication").get("role") == "master"


class ClusterNodes(Started):
    """``masters`` cluster-enabled servers on loopback, joined and given every slot.

    ``url`` is the ``redis+cluster://`` URL grantbot takes.
    """

    def __init__(self, *, masters: int = 3) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="grantbot-cluster-"))
        self.nodes = [
            RedisServer(
                port=_cluster_port(),
                appendonly=False,
                data_dir=self._dir / str(i),
                extra_args=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(self._dir / str(i) / "nodes.conf"),
                    "--cluster-node-timeout",
                    "2000",
                ),
            )
            for i in range(masters)
        ]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return f"redis+cluster://{hosts}/0"

    def start(self) -> Self:
        try:
            for node in self.nodes:
                node.start()
            self._join()
        except BaseException:
            self.stop()
            raise
        return self

    def _join(self) -> None:
        """CLUSTER ADDSLOTSRANGE per node, then CLUSTER MEET, then wait for state ok."""
        clients = [
            redis_sync.Redis(port=n.port, socket_timeout=2.0, decode_responses=True)
            for n in self.nodes
        ]
        try:
            per = 16384 // len(clients)
            for i, client in enumerate(clients):
                last = 16383 if i == len(clients) - 1 else (i + 1) * per - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)  # type: ignore[no-untyped-call]
            for client in clients[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)  # type: ignore[no-untyped-call]

            def ok() -> bool:
                return all(
                    "cluster_state:ok" in str(c.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
                    and int(_cluster_known(c)) == len(clients)
                    for c in clients
                )

            wait_until(ok, "the cluster to agree")
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is valid and free too."""
    for _ in range(200):
        port = free_port()
        if port <= 55535 and _free(port + 10000):
            return port
    raise ConfigError("found no free port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_known(client: redis_sync.Redis) -> int:
    info = str(client.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
    for line in info.splitlines():
        if line.startswith("cluster_known_nodes:"):
            return int(line.split(":", 1)[1])
    return 0
