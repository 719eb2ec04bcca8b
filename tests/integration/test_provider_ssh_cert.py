"""The ssh_cert provider with the real ssh-keygen, proven against a real sshd that trusts the
test CA (TrustedUserCAKeys) and reads the provider's KRL (RevokedKeys)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.domain.credentials import Credential
from bot.errors import ProviderError, TargetUnavailable
from bot.providers.base import GrantContext
from bot.providers.naming import cert_serial
from bot.providers.registry import build_provider
from bot.providers.ssh_cert import CLOCK_SKEW_S, SSHCertProvider, SSHCertSettings
from tests.integration.providers_fixtures import (
    SshServer,
    make_ctx,
    new_user_key,
    ssh_keygen,
)

pytestmark = pytest.mark.needs("sshd", "ssh")


@dataclass
class CA:
    dir: Path
    key: Path
    krl: Path
    sshd: SshServer

    def provider(self, **kw: Any) -> SSHCertProvider:
        settings = SSHCertSettings(ca_key_file=str(self.key), krl_file=str(self.krl))
        return SSHCertProvider(settings, **kw)

    def ctx(self, key: Path, **kw: Any) -> GrantContext:
        return make_ctx(
            role_settings={"principals": [self.sshd.user]},
            ssh_public_key=key.with_suffix(".pub").read_text(),
            **kw,
        )


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CA]:
    """A CA key, an empty KRL and an sshd trusting both, shared by this module's tests."""
    d = tmp_path_factory.mktemp("ssh-ca")
    key = d / "ca"
    assert (
        ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", "test-ca", "-f", str(key)).returncode == 0
    )
    krl = d / "revoked.krl"
    assert ssh_keygen("-k", "-f", str(krl)).returncode == 0
    sshd = SshServer(directory=d, ca_public_key=key.with_suffix(".pub"), krl_file=krl).start()
    try:
        yield CA(dir=d, key=key, krl=krl, sshd=sshd)
    finally:
        sshd.stop()


def _save_cert(key: Path, cred: Credential, name: str = "cert") -> Path:
    path = key.parent / f"{key.name}-{name}.pub"
    path.write_text((cred.get("certificate") or "") + "\n")
    return path


def _details(cert: Path) -> str:
    done = ssh_keygen("-L", "-f", str(cert))
    assert done.returncode == 0, done.stderr
    return done.stdout


def _krl_listing(krl: Path) -> list[str]:
    """The KRL's contents as ssh-keygen lists them, minus the generation time."""
    out = ssh_keygen("-Q", "-l", "-f", str(krl)).stdout.splitlines()
    return [line for line in out if not line.startswith("# Generated at")]


def _krl_verdict(krl: Path, cert: Path) -> str:
    return ssh_keygen("-Q", "-f", str(krl), str(cert)).stdout.strip().rsplit(" ", 1)[-1]


async def test_issued_certificate_logs_in_to_a_real_sshd(ca: CA, tmp_path: Path) -> None:
    """The certificate logs in to sshd as the principal, and carries the grant's key id,
    serial, principals and UTC validity from now-1m to the grant's expiry."""
    key = new_user_key(tmp_path)
    provider = build_provider(
        {"type": "ssh_cert", "ca_key_file": str(ca.key), "krl_file": str(ca.krl)}, env={}
    )
    ctx = ca.ctx(key)
    now = time.time()
    cred = await provider.issue(ctx, now=now)
    cert = _save_cert(key, cred)
    login = await asyncio.to_thread(ca.sshd.login, key, cert)
    assert login.returncode == 0, login.stderr + ca.sshd.log.read_text()[-800:]
    assert login.stdout.strip() == "logged-in"

    details = _details(cert)
    assert f'Key ID: "{ctx.grant_id} {ctx.user}"' in details
    assert f"Serial: {cert_serial(ctx.grant_id)}" in details
    assert re.search(rf"Principals:\s+{re.escape(ca.sshd.user)}\s", details)
    stamp = "%Y-%m-%dT%H:%M:%S"
    start = datetime.fromtimestamp(int(now - CLOCK_SKEW_S), tz=UTC).strftime(stamp)
    end = datetime.fromtimestamp(int(ctx.expires_at), tz=UTC).strftime(stamp)
    assert f"Valid: from {start} to {end}" in details
    assert "permit-pty" in details
    assert "permit-port-forwarding" not in details
    assert cred.ref == str(cert_serial(ctx.grant_id))
    assert await provider.check(ctx)
    assert ctx.grant_id in await provider.live_grant_ids()


async def test_revoke_puts_the_serial_in_the_krl_and_sshd_refuses_it(
    ca: CA, tmp_path: Path
) -> None:
    """After revoke, ssh-keygen -Q reports the certificate REVOKED, sshd refuses the login,
    check() is false, and a second revoke is fine."""
    key = new_user_key(tmp_path)
    provider = ca.provider()
    ctx = ca.ctx(key)
    cert = _save_cert(key, await provider.issue(ctx, now=time.time()))
    assert _krl_verdict(ca.krl, cert) == "ok"
    await provider.revoke(ctx)
    assert _krl_verdict(ca.krl, cert) == "REVOKED"
    login = await asyncio.to_thread(ca.sshd.login, key, cert)
    assert login.returncode != 0
    assert "Permission denied" in login.stderr
    assert not await provider.check(ctx)
    assert ctx.grant_id not in await provider.live_grant_ids()
    listing = _krl_listing(ca.krl)
    await provider.revoke(ctx)
    assert _krl_verdict(ca.krl, cert) == "REVOKED"
    assert _krl_listing(ca.krl) == listing  # the same revocations, none added twice


async def test_overlapping_grants_with_the_same_key_are_independent(ca: CA, tmp_path: Path) -> None:
    """Two grants of one user with the same public key get two serials; revoking one leaves
    the other certificate logging in."""
    key = new_user_key(tmp_path)
    provider = ca.provider()
    first, second = ca.ctx(key, user="U0SAME"), ca.ctx(key, user="U0SAME")
    cert1 = _save_cert(key, await provider.issue(first, now=time.time()), "first")
    cert2 = _save_cert(key, await provider.issue(second, now=time.time()), "second")
    await provider.revoke(first)
    assert (await asyncio.to_thread(ca.sshd.login, key, cert1)).returncode != 0
    login = await asyncio.to_thread(ca.sshd.login, key, cert2)
    assert login.returncode == 0, login.stderr
    assert await provider.check(second)
    assert not await provider.check(first)


async def test_issuing_twice_shares_one_serial_that_one_revoke_ends(ca: CA, tmp_path: Path) -> None:
    """A re-issue for one grant has the same serial, so one revoke ends both certificates."""
    key = new_user_key(tmp_path)
    provider = ca.provider()
    ctx = ca.ctx(key)
    cert1 = _save_cert(key, await provider.issue(ctx, now=time.time()), "first")
    cert2 = _save_cert(key, await provider.issue(ctx, now=time.time()), "second")
    await provider.revoke(ctx)
    for cert in (cert1, cert2):
        assert _krl_verdict(ca.krl, cert) == "REVOKED"
        assert (await asyncio.to_thread(ca.sshd.login, key, cert)).returncode != 0


async def test_the_certificate_stops_working_at_expiry_without_any_revoke(
    ca: CA, tmp_path: Path
) -> None:
    """sshd refuses the certificate once the grant's expiry passes; the bot did nothing."""
    key = new_user_key(tmp_path)
    provider = ca.provider()
    ctx = ca.ctx(key, ttl_s=2.0)
    cert = _save_cert(key, await provider.issue(ctx, now=time.time()))
    assert (await asyncio.to_thread(ca.sshd.login, key, cert)).returncode == 0
    # Validity ends at the whole second at or before expires_at.
    await asyncio.sleep(max(0.0, int(ctx.expires_at) + 1.2 - time.time()))
    login = await asyncio.to_thread(ca.sshd.login, key, cert)
    assert login.returncode != 0
    assert _krl_verdict(ca.krl, cert) == "ok"  # not revoked: expired
    assert not await provider.check(ctx)


async def test_revoke_after_expiry_is_a_no_op_success(ca: CA, tmp_path: Path) -> None:
    """Revoking a grant whose certificate has expired (beyond the clock-skew allowance) leaves
    the KRL untouched and succeeds."""
    key = new_user_key(tmp_path)
    ctx = ca.ctx(key, ttl_s=60)
    await ca.provider().issue(ctx, now=time.time())
    later = ca.provider(clock=lambda: ctx.expires_at + CLOCK_SKEW_S + 1)
    before = ca.krl.read_bytes()
    await later.revoke(ctx)
    assert ca.krl.read_bytes() == before


async def test_a_missing_krl_directory_raises_target_unavailable(ca: CA, tmp_path: Path) -> None:
    """When the KRL's directory (shared storage) is not there, revoke, issue and health raise
    TargetUnavailable."""
    key = new_user_key(tmp_path)
    provider = SSHCertProvider(
        SSHCertSettings(ca_key_file=str(ca.key), krl_file=str(tmp_path / "gone" / "krl"))
    )
    ctx = ca.ctx(key)
    with pytest.raises(TargetUnavailable):
        await provider.revoke(ctx)
    with pytest.raises(TargetUnavailable):
        await provider.issue(ctx, now=time.time())
    with pytest.raises(TargetUnavailable):
        await provider.health()
    await ca.provider().health()


async def test_a_private_key_or_junk_is_refused_without_echoing_it(ca: CA, tmp_path: Path) -> None:
    """A pasted private key, a non-key and a missing key are refused, and the message never
    quotes what was sent."""
    key = new_user_key(tmp_path)
    provider = ca.provider()
    private = key.read_text()
    for sent, reason in [
        (private, "PRIVATE key"),
        ("ssh-ed25519 not-base64!!", "not an OpenSSH public key"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "cannot be certified"),
        (None, "no SSH public key"),
    ]:
        ctx = make_ctx(role_settings={"principals": ["root"]}, ssh_public_key=sent)
        with pytest.raises(ProviderError, match=reason) as refused:
            await provider.issue(ctx, now=time.time())
        assert private.splitlines()[1] not in str(refused.value)


async def test_issue_logs_no_key_material(
    ca: CA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG, issue + revoke log neither the CA's private key nor the certificate body."""
    caplog.set_level(logging.DEBUG)
    key = new_user_key(tmp_path)
    provider = ca.provider()
    ctx = ca.ctx(key)
    cred = await provider.issue(ctx, now=time.time())
    await provider.revoke(ctx)
    ca_secret = ca.key.read_text().splitlines()[1]
    cert_body = (cred.get("certificate") or "").split()[1]
    assert caplog.records
    assert ca_secret not in caplog.text
    assert cert_body not in caplog.text
