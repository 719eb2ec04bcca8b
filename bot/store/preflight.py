"""At start, before anything serves: is ``REDIS_URL`` one grantbot can use?

One blocking look at what the URL points to, so a wrong one stops the start with one line
(a :class:`~bot.errors.ConfigError`, exit 1) instead of a bot that runs and never gets ready:
a CA file that is missing, nothing listening, a TLS handshake that fails, a refused login, a
db the server does not have, a "sentinel" that is a plain Redis, a "cluster" node whose
cluster mode is off. An outage after the start is another matter: every loop rides it out.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import redis as redis_sync
from redis import exceptions as redis_errors
from redis.sentinel import MasterNotFoundError
from redis.sentinel import Sentinel as SyncSentinel

from bot.errors import ConfigError
from bot.store.cluster import seeds_answer
from bot.store.endpoints import DEFAULT_PORT, Endpoint, parse_redis_url

#: How long the start waits for each server (sentinels and seed nodes answer from memory).
PREFLIGHT_TIMEOUT_S: Final = 1.0
#: A server (perhaps managed, across a network, with a TLS handshake) gets longer.
SERVER_TIMEOUT_S: Final = 3.0
_FILE_OPTIONS: Final = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


def check_reachable(url: str, *, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> None:
    """``url`` is well formed and what it names answers as that kind of Redis, letting
    grantbot in; else ConfigError, one line naming what is wrong (never the password).
    Blocking, for a moment."""
    endpoint = parse_redis_url(url)
    for name in _FILE_OPTIONS:
        path = endpoint.tls_options.get(name)
        if isinstance(path, str) and not Path(path).is_file():
            raise ConfigError(f"REDIS_URL option {name} names a file that does not exist: {path}")
    if endpoint.kind == "cluster":
        _check_cluster(endpoint, timeout_s=timeout_s)
    elif endpoint.kind == "sentinel":
        _check_sentinels(endpoint, timeout_s=timeout_s)
    else:
        wait_s = max(timeout_s, SERVER_TIMEOUT_S)
        client = redis_sync.Redis.from_url(
            url, socket_timeout=wait_s, socket_connect_timeout=wait_s
        )
        try:
            client.ping()
        except (redis_errors.RedisError, OSError) as e:
            if endpoint.tls and _tcp_accepts(url, timeout_s=wait_s) and _unanswered(e):
                # A server without TLS takes the ClientHello as a command still coming and
                # says nothing: a timeout, though the port is open.
                raise ConfigError(
                    f"REDIS_URL: the TLS handshake with {endpoint.describe()} failed (is TLS "
                    f"on at that port?): {str(e).strip() or type(e).__name__}"
                ) from None
            raise ConfigError(_why(e, endpoint.describe())) from None
        finally:
            client.close()


def _unanswered(error: BaseException) -> bool:
    return isinstance(error, (redis_errors.ConnectionError, redis_errors.TimeoutError)) and not (
        isinstance(error, redis_errors.AuthenticationError)
    )


def _tcp_accepts(url: str, *, timeout_s: float) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT), timeout=timeout_s
        ):
            return True
    except OSError:
        return False


def _why(error: BaseException, where: str) -> str:
    """One line for what went wrong reaching ``where``."""
    text = str(error).strip() or type(error).__name__
    if isinstance(error, redis_errors.AuthenticationError):
        return f"REDIS_URL: Redis refused the login at {where}: {text}"
    if isinstance(error, redis_errors.ResponseError):
        if "DB index" in text or "invalid DB" in text.lower():
            return f"REDIS_URL: Redis at {where} has no such db: {text}"
        return f"REDIS_URL: Redis at {where} refused grantbot's connection: {text}"
    if "SSL" in text or "TLS" in text:
        return f"REDIS_URL: the TLS handshake with {where} failed: {text}"
    return f"REDIS_URL: nothing answered at {where}: {text}"


def _node(host: str, port: int, endpoint: Endpoint, *, timeout_s: float, **login: Any) -> Any:
    options: dict[str, Any] = dict(login)
    if endpoint.tls and not login.get("plain"):
        options.update(ssl=True, **endpoint.tls_options)
    options.pop("plain", None)
    return redis_sync.Redis(
        host=host,
        port=port,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        decode_responses=True,
        **options,
    )


def _check_cluster(endpoint: Endpoint, *, timeout_s: float) -> None:
    answered: list[str] = []
    for host, port in endpoint.hosts:
        client = _node(
            host,
            port,
            endpoint,
            timeout_s=timeout_s,
            username=endpoint.username,
            password=endpoint.password,
        )
        try:
            enabled = str(client.info("cluster").get("cluster_enabled", "0"))
        except redis_errors.AuthenticationError as e:
            raise ConfigError(_why(e, f"{host}:{port}")) from None
        except (redis_errors.RedisError, OSError):
            continue
        finally:
            client.close()
        if enabled != "1":
            raise ConfigError(
                f"REDIS_URL: {host}:{port} is not a cluster node (cluster mode is off there); "
                "use redis:// for a single server"
            )
        answered.append(f"{host}:{port}")
    if not answered or not seeds_answer(endpoint):
        raise ConfigError(f"REDIS_URL: no cluster node answered at {endpoint.describe()}")


def _check_sentinels(endpoint: Endpoint, *, timeout_s: float) -> None:
    login: dict[str, Any] = {"plain": True}
    if endpoint.sentinel_username is not None:
        login["username"] = endpoint.sentinel_username
    if endpoint.sentinel_password is not None:
        login["password"] = endpoint.sentinel_password
    answered = 0
    for host, port in endpoint.hosts:
        client = _node(host, port, endpoint, timeout_s=timeout_s, **login)
        try:
            mode = str(client.info("server").get("redis_mode", ""))
        except (redis_errors.RedisError, OSError):
            continue
        finally:
            client.close()
        if mode != "sentinel":
            raise ConfigError(
                f"REDIS_URL: {host}:{port} is not a sentinel (it is a {mode or 'plain'} Redis); "
                "use redis:// for a single server"
            )
        answered += 1
    if not answered:
        raise ConfigError(f"REDIS_URL: no sentinel answered at {endpoint.describe()}")
    sentinel_kwargs = {k: v for k, v in login.items() if k != "plain"}
    sentinel_kwargs.update(socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    sentinel = SyncSentinel(endpoint.hosts, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    try:
        sentinel.discover_master(endpoint.master_name)  # type: ignore[no-untyped-call]
    except MasterNotFoundError as e:
        raise ConfigError(
            f"REDIS_URL: no sentinel knows a reachable master named "
            f"{endpoint.master_name!r} ({endpoint.describe()})"
        ) from e
    finally:
        for client in sentinel.sentinels:
            client.close()
