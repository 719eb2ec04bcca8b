"""The forms of ``REDIS_URL`` grantbot accepts, read into an :class:`Endpoint` (pure).

- ``redis://[user:pass@]host:port[/db]`` and ``rediss://`` (TLS): one server, or a managed
  Redis whose endpoint follows its master; ``unix:///path.sock``.
- ``redis+sentinel://[user:pass@]host1:26379,host2:26379/<master-name>[/<db>]`` (and
  ``rediss+sentinel://``, TLS to the master and replicas): the sentinels are asked which server
  is the master and followed when it changes. ``user:pass`` is the master's (ACL) login;
  sentinels that want their own give it as ``?sentinel_username=…&sentinel_password=…``.
- ``redis+cluster://[user:pass@]host1:port,host2:port[/0]`` (and ``rediss+cluster://``): a
  Redis Cluster, found from any of the nodes named.

Query options (every form): ``ssl_ca_certs`` (the CA file that signs the server's TLS
certificate), ``ssl_certfile`` / ``ssl_keyfile`` (a client certificate), ``ssl_cert_reqs``
(``required``, the default, ``optional`` or ``none``), ``ssl_check_hostname`` (true/false),
and the two sentinel options above. Anything else is refused, so a typo is not silently
ignored. Every problem is a :class:`~bot.errors.ConfigError` of one line that names what is
wrong and never the password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from bot.errors import ConfigError

Kind = Literal["direct", "sentinel", "cluster"]

_SCHEMES: Final[dict[str, tuple[Kind, bool]]] = {
    "redis": ("direct", False),
    "rediss": ("direct", True),
    "unix": ("direct", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_TLS_OPTIONS: Final = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
_SENTINEL_OPTIONS: Final = ("sentinel_username", "sentinel_password")
_BOOL_OPTIONS: Final = ("ssl_check_hostname",)
_CERT_REQS: Final = ("required", "optional", "none")
DEFAULT_PORT: Final = 6379
DEFAULT_SENTINEL_PORT: Final = 26379


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where grantbot's Redis is and how to log in to it."""

    kind: Kind
    #: The URL as given (passed to redis-py as is for ``direct``).
    url: str
    tls: bool = False
    #: The sentinels (``sentinel``) or the cluster's seed nodes (``cluster``).
    hosts: tuple[tuple[str, int], ...] = ()
    master_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: TLS options for redis-py's connections (``ssl_ca_certs``, ...), parsed.
    tls_options: dict[str, str | bool] = field(default_factory=dict)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """Where it points, for a log or an error line (never the password)."""
        hosts = ",".join(f"{h}:{p}" for h, p in self.hosts)
        if self.kind == "sentinel":
            return f"sentinels {hosts} (master {self.master_name!r})"
        if self.kind == "cluster":
            return f"cluster nodes {hosts}"
        parts = urlsplit(self.url)
        where = parts.hostname or parts.path or "?"
        return f"{parts.scheme}://{where}" + (f":{parts.port}" if parts.port else "")


def parse_redis_url(url: str) -> Endpoint:
    """Read ``url`` (see the module docstring); ConfigError naming what is wrong."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ConfigError(
            "REDIS_URL is not a URL: it must start with redis://, rediss:// or redis+sentinel://"
        )
    kind_tls = _SCHEMES.get(scheme.lower())
    if kind_tls is None:
        raise ConfigError(
            f"REDIS_URL has an unknown scheme {scheme!r}: use one of {', '.join(_SCHEMES)}"
        )
    kind, tls = kind_tls
    parts = urlsplit(url)
    tls_options, sentinel_login = _options(parts.query, tls=tls)
    if kind == "direct":
        if scheme != "unix" and not _host_part(parts.netloc):
            raise ConfigError("REDIS_URL names no host (redis://host:port/db)")
        if scheme != "unix":
            _port(parts.netloc)
            _db([unquote(s) for s in parts.path.split("/") if s])
        return Endpoint(kind="direct", url=url, tls=tls, tls_options=tls_options)
    login, _, hostlist = parts.netloc.rpartition("@")
    username, password = _login(login)
    default_port = DEFAULT_SENTINEL_PORT if kind == "sentinel" else DEFAULT_PORT
    hosts = _hosts(hostlist, default_port=default_port, what=kind)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if kind == "sentinel":
        if not segments:
            raise ConfigError(
                "REDIS_URL names no Sentinel master: redis+sentinel://host:26379,.../<master-name>[/<db>]"
            )
        if len(segments) > 2:
            raise ConfigError("REDIS_URL has more after the master name than a db number")
        master_name, db = segments[0], _db(segments[1:])
    else:
        if len(segments) > 1:
            raise ConfigError("REDIS_URL for a cluster has a path: a cluster has only db 0")
        master_name, db = "", _db(segments)
        if db != 0:
            raise ConfigError(
                "REDIS_URL for a cluster names a db other than 0: a cluster has only db 0"
            )
    return Endpoint(
        kind=kind,
        url=url,
        tls=tls,
        hosts=hosts,
        master_name=master_name,
        db=db,
        username=username,
        password=password,
        tls_options=tls_options,
        sentinel_username=sentinel_login.get("sentinel_username"),
        sentinel_password=sentinel_login.get("sentinel_password"),
    )


def _host_part(netloc: str) -> str:
    return netloc.rpartition("@")[2]


def _port(netloc: str) -> None:
    """A direct URL's port, when given, is a number (redis-py would fail deep inside)."""
    host = _host_part(netloc)
    port = host.rpartition(":")[2] if ":" in host and not host.endswith("]") else ""
    if port and (not port.isdigit() or not 0 < int(port) < 65536):
        raise ConfigError(f"REDIS_URL has a port {port!r} that is not a number from 1 to 65535")


def _login(login: str) -> tuple[str | None, str | None]:
    if not login:
        return None, None
    user, sep, password = login.partition(":")
    if not sep:  # "secret@host": a password alone, as redis-py reads it
        return None, unquote(user) or None
    return unquote(user) or None, unquote(password) or None


def _hosts(text: str, *, default_port: int, what: str) -> tuple[tuple[str, int], ...]:
    hosts = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":") if not item.endswith("]") else (item, "", "")
        if not sep:
            host, port = item, str(default_port)
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"REDIS_URL has a bad {what} address {item!r} (host:port)")
        hosts.append((host, int(port)))
    if not hosts:
        raise ConfigError(f"REDIS_URL names no {what} host (host1:port,host2:port)")
    return tuple(hosts)


def _db(segments: list[str]) -> int:
    if not segments:
        return 0
    if not segments[0].isdigit():
        raise ConfigError(f"REDIS_URL has a db {segments[0]!r} that is not a number")
    return int(segments[0])


def _options(query: str, *, tls: bool) -> tuple[dict[str, str | bool], dict[str, str]]:
    tls_options: dict[str, str | bool] = {}
    sentinel: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in _TLS_OPTIONS or name in _BOOL_OPTIONS:
            if not tls:
                raise ConfigError(f"REDIS_URL option {name} needs TLS: use rediss://")
            if name in _BOOL_OPTIONS:
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ConfigError(f"REDIS_URL option {name} must be true or false")
                tls_options[name] = value.lower() in ("true", "1", "yes")
            elif name == "ssl_cert_reqs" and value not in _CERT_REQS:
                raise ConfigError(
                    f"REDIS_URL option ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}"
                )
            else:
                tls_options[name] = value
        elif name in _SENTINEL_OPTIONS:
            sentinel[name] = value
        elif name == "db":
            continue  # redis-py's own ?db= on a direct URL
        else:
            known = ", ".join((*_TLS_OPTIONS, *_BOOL_OPTIONS, *_SENTINEL_OPTIONS))
            raise ConfigError(f"REDIS_URL has an unknown option {name!r} (known: {known})")
    return tls_options, sentinel
