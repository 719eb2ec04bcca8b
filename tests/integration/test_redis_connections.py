"""grantbot's Redis in every form REDIS_URL takes, against real servers: a bad URL stops a
start with one line; the store, the scheduler's blocking client and the CLI follow a Sentinel
master through a failover; TLS with a CA file."""

from __future__ import annotations

import datetime as dt
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.devtools.redis_ha import SentinelGroup, wait_until
from bot.devtools.redis_server import RedisServer, free_port
from bot.domain.model import Actor, Event, Status
from bot.store.connection import close_client, connect
from bot.store.grants import GrantStore
from bot.store.job_index import JobIndex
from bot.store.keys import Keys
from tests.factories import POLICY_V, make_grant
from tests.integration.support import grantbot

SERVE_ENV = {"SLACK_BOT_TOKEN": "xoxb-not-used-here", "SLACK_SIGNING_SECRET": "not-used-here"}


@pytest.fixture(scope="module")
def sentinels() -> Iterator[SentinelGroup]:
    with SentinelGroup(replicas=2, sentinels=3) as group:
        yield group


def _repl_offset(port: int) -> int:
    client = redis.Redis(port=port, socket_timeout=1.0)
    try:
        return int(client.info("replication")["master_repl_offset"])
    finally:
        client.close()


def _replicas_caught_up(sentinels: SentinelGroup) -> None:
    """Every live replica has processed the master's replication stream as it is now."""
    master = sentinels.master_port()
    assert master is not None
    offset = _repl_offset(master)
    replicas = [s.port for s in sentinels.servers if s.port != master and s.alive]
    assert replicas
    wait_until(lambda: all(_repl_offset(p) >= offset for p in replicas), "the replicas to catch up")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("memcached://127.0.0.1:11211", "unknown scheme 'memcached'"),
        ("redis+sentinel://127.0.0.1:26379,127.0.0.1:26380", "names no Sentinel master"),
        ("redis+sentinel://127.0.0.1:{free1},127.0.0.1:{free2}/grantbot", "no sentinel answered"),
    ],
)
def test_serve_with_a_bad_redis_url_exits_1_with_one_line(
    url: str, says: str, tmp_path: Path
) -> None:
    """A bad REDIS_URL (unknown scheme, no master name, no sentinel answering) stops
    `grantbot serve` before anything starts: exit 1, one line naming what is wrong."""
    url = url.format(free1=free_port(), free2=free_port())
    done = grantbot(
        "serve", env={**SERVE_ENV, "REDIS_URL": url, "GRANTBOT_DATA_DIR": str(tmp_path)}
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert says in lines[0] and "REDIS_URL" in lines[0]


def test_sentinels_that_know_no_such_master_stop_the_start(
    sentinels: SentinelGroup, tmp_path: Path
) -> None:
    url = sentinels.url.replace("/grantbot/", "/elsewhere/")
    done = grantbot("grants", "list", env={"REDIS_URL": url})
    assert done.returncode == 1
    assert "no sentinel knows a reachable master named 'elsewhere'" in done.stderr.strip()


async def test_the_store_and_the_cli_follow_the_master_through_a_failover(
    sentinels: SentinelGroup, keys: Keys
) -> None:
    """Over redis+sentinel:// the store writes, the master is SIGKILLed, the sentinels
    promote a replica, and the same store (and the scheduler's blocking client, and a CLI
    process) carry on against the new master with what was written before."""
    store = GrantStore.open(sentinels.url, keys=keys)
    index = JobIndex.connect(sentinels.url, keys=keys)
    try:
        grant = await store.create(
            make_grant(), actor=Actor.system("test"), policy_version=POLICY_V
        )
        index.write(grant.id, "record", score="100", mode="put")
        _replicas_caught_up(sentinels)  # every replica has it, so the failover keeps it
        old = sentinels.master_port()
        assert old is not None
        sentinels.kill_master()
        # The store's next command rides out the election (redis-py's retry and Sentinel
        # pool) or says "try again shortly"; either way, once a replica is promoted it works.
        new = sentinels.wait_for_new_master(old)
        assert new != old
        outcome = await store.transition(
            grant.id,
            Event.APPROVE,
            actor=Actor(kind="approver", id="U0APPROVER"),
            now=time.time(),
            policy_version=POLICY_V,
        )
        assert outcome.grant.status in (Status.APPROVED, Status.PENDING)
        assert (await store.get(grant.id)).version == 2
        assert index.lookup(grant.id) == ("record", 100.0)
        listed = grantbot(
            "grants", "list", env={"REDIS_URL": sentinels.url, "GRANTBOT_REDIS_PREFIX": keys.prefix}
        )
        assert listed.returncode == 0, listed.stderr
        assert grant.id in listed.stdout
        assert (await store.audit.verify()).entries == 2  # REQUEST, APPROVE: nothing lost
    finally:
        index.clear()
        index.close()
        await store.aclose()


def _tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 it signed: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.UTC)

    def cert(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        signer: ec.EllipticCurvePrivateKey,
        *,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "grantbot test CA")])
    ca_cert = cert("grantbot test CA", ca_key, ca_name, ca_key, ca=True)
    server_cert = cert("127.0.0.1", server_key, ca_name, ca_key, ca=False)
    paths = (tmp / "ca.pem", tmp / "server.pem", tmp / "server.key")
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def test_rediss_with_a_ca_file_and_an_acl_login(tmp_path: Path) -> None:
    """rediss://user:pass@host/db?ssl_ca_certs=FILE: the server's certificate is checked
    against that CA and the ACL user logs in; without the CA file the handshake fails."""
    ca, cert, key = _tls_files(tmp_path)
    tls_port = free_port()
    server = RedisServer(
        appendonly=False,
        extra_args=(
            "--tls-port",
            str(tls_port),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(ca),
            "--tls-auth-clients",
            "no",
            "--user",
            "bot",
            "on",
            ">s3cret",
            "~*",
            "&*",
            "+@all",
        ),
    )
    with server:
        url = f"rediss://bot:s3cret@127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}"
        client = connect(url)
        try:
            assert await client.set("tls-check", "yes")
            assert await client.acl_whoami() == "bot"
        finally:
            await close_client(client)
        listed = grantbot("grants", "list", env={"REDIS_URL": url})
        assert listed.returncode == 0, listed.stderr
        untrusted = grantbot("grants", "list", env={"REDIS_URL": url.split("?")[0]})
        assert untrusted.returncode == 1
        assert len(untrusted.stderr.strip().splitlines()) == 1


async def test_a_take_or_claim_sent_twice_still_reads_as_ours(
    store: GrantStore, redis_client: aioredis.Redis
) -> None:
    """redis-py sends a command again when its connection broke (a failover); the lease take
    and the delivery claim must read their own first attempt as theirs, not as a rival's
    (else the leader steps aside, or a delivery is dropped unanswered)."""
    from bot.store.scripts import register

    lease = store.scheduler_lease()
    assert await lease.take("replica-a", ttl_ms=5000)
    assert await lease.take("replica-a", ttl_ms=5000)  # the same take, again
    assert not await lease.take("replica-b", ttl_ms=5000)
    claim = register(redis_client, "once_claim.lua")
    key = store.keys.once("delivery-1")
    assert await claim(keys=[key], args=["claim-1", 60]) == 1
    assert await claim(keys=[key], args=["claim-1", 60]) == 1  # the same claim, again
    assert await claim(keys=[key], args=["claim-2", 60]) == 0  # Slack's own retry: a repeat
