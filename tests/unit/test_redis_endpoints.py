"""REDIS_URL forms: each accepted form read into an Endpoint, each bad one refused with one
line that names what is wrong and never the password."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.store.endpoints import parse_redis_url


def test_plain_and_tls_urls_go_to_redis_py_as_given() -> None:
    """redis:// and rediss:// are direct; the CA file option is kept for TLS."""
    plain = parse_redis_url("redis://app:pw@cache.internal:6380/2")
    assert (plain.kind, plain.tls, plain.url) == (
        "direct",
        False,
        "redis://app:pw@cache.internal:6380/2",
    )
    tls = parse_redis_url("rediss://cache.internal:6380/0?ssl_ca_certs=/etc/ca.pem")
    assert (tls.kind, tls.tls, tls.tls_options) == ("direct", True, {"ssl_ca_certs": "/etc/ca.pem"})
    assert parse_redis_url("unix:///run/redis.sock").kind == "direct"


def test_sentinel_url_names_sentinels_master_db_and_login() -> None:
    """redis+sentinel://user:pass@h1:26379,h2/<master>/<db>: the sentinels (default port
    26379), the master's name, the db and the master's ACL login."""
    ep = parse_redis_url("redis+sentinel://bot:s%40cret@s1:26380,s2/mymaster/3")
    assert ep.kind == "sentinel"
    assert ep.hosts == (("s1", 26380), ("s2", 26379))
    assert (ep.master_name, ep.db, ep.username, ep.password) == ("mymaster", 3, "bot", "s@cret")
    assert "s@cret" not in ep.describe() and "s@cret" not in repr(ep)
    default_db = parse_redis_url("rediss+sentinel://s1:26379/mymaster?sentinel_password=x")
    assert (default_db.db, default_db.tls, default_db.sentinel_password) == (0, True, "x")


def test_cluster_url_names_its_seed_nodes() -> None:
    ep = parse_redis_url("redis+cluster://n1:7000,n2:7001")
    assert (ep.kind, ep.hosts, ep.db) == ("cluster", (("n1", 7000), ("n2", 7001)), 0)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://cache:6379", "unknown scheme 'http'"),
        ("cache:6379", "not a URL"),
        ("redis+sentinel://s1:26379,s2:26379", "names no Sentinel master"),
        ("redis+sentinel://s1:26379/", "names no Sentinel master"),
        ("redis+sentinel:///mymaster", "names no sentinel host"),
        ("redis+sentinel://s1:port/mymaster", "bad sentinel address 's1:port'"),
        ("redis+sentinel://s1/mymaster/zero", "db 'zero' that is not a number"),
        ("redis+sentinel://s1/mymaster/0/extra", "more after the master name"),
        ("redis+cluster://n1:7000/3", "db other than 0"),
        ("redis://cache:6379/0?ssl_ca_certs=/ca.pem", "needs TLS: use rediss://"),
        ("rediss://cache:6379/0?ssl_ca_cert=/ca.pem", "unknown option 'ssl_ca_cert'"),
        ("rediss://cache/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of"),
        ("redis://", "names no host"),
    ],
)
def test_a_bad_url_is_one_line_naming_the_problem(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_redis_url(url.replace("s1:", "bot:hunter2@s1:", 1))
    assert says in str(e.value)
    assert "\n" not in str(e.value) and "hunter2" not in str(e.value)
