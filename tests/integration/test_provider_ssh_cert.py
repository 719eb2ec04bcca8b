"""The ssh_cert provider with the real ssh-keygen, proven against a real sshd that trusts the
test CA (TrustedUserCAKeys) and reads the provider's KRL (RevokedKeys), beyond the provider
contract (test_provider_contract.py): the certificate's contents, the KRL, real expiry."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import ProviderError
from bot.providers.naming import cert_serial
from bot.providers.registry import build_provider
from bot.providers.ssh_cert import CLOCK_SKEW_S
from tests.integration.provider_targets import SshCA, save_cert
from tests.integration.providers_fixtures import (
    make_ctx,
    new_user_key,
    ssh_keygen,
)

pytestmark = pytest.mark.needs("sshd", "ssh")


def _details(cert: Path) -> str:
    done = ssh_keygen("-L", "-f", str(cert))
    assert done.returncode == 0, done.stderr
    return done.stdout


def _krl_listing(krl: Path) -> list[str]:
    """The KRL's contents as ssh-keygen lists them, minus the generation time."""
    out = ssh_keygen("-Q", "-l", "-f", str(krl)).stdout.splitlines()
    return [line for line in out if not line.startswith("# Generated at")]


async def test_issued_certificate_logs_in_to_a_real_sshd(ssh_ca: SshCA, tmp_path: Path) -> None:
    """The certificate logs in to sshd as the principal, and carries the grant's key id,
    serial, principals and UTC validity from now-1m to the grant's expiry."""
    key = new_user_key(tmp_path)
    provider = build_provider(
        {"type": "ssh_cert", "ca_key_file": str(ssh_ca.key), "krl_file": str(ssh_ca.krl)}, env={}
    )
    ctx = ssh_ca.ctx(key)
    now = time.time()
    cred = await provider.issue(ctx, now=now)
    cert = save_cert(key, cred, "cert")
    login = await asyncio.to_thread(ssh_ca.sshd.login, key, cert)
    assert login.returncode == 0, login.stderr + ssh_ca.sshd.log.read_text()[-800:]
    assert login.stdout.strip() == "logged-in"

    details = _details(cert)
    assert f'Key ID: "{ctx.grant_id} {ctx.user}"' in details
    assert f"Serial: {cert_serial(ctx.grant_id)}" in details
    assert re.search(rf"Principals:\s+{re.escape(ssh_ca.sshd.user)}\s", details)
    stamp = "%Y-%m-%dT%H:%M:%S"
    start = datetime.fromtimestamp(int(now - CLOCK_SKEW_S), tz=UTC).strftime(stamp)
    end = datetime.fromtimestamp(int(ctx.expires_at), tz=UTC).strftime(stamp)
    assert f"Valid: from {start} to {end}" in details
    assert "permit-pty" in details
    assert "permit-port-forwarding" not in details
    assert cred.ref == str(cert_serial(ctx.grant_id))


async def test_revoke_puts_the_serial_in_the_krl_and_sshd_refuses_it(
    ssh_ca: SshCA, tmp_path: Path
) -> None:
    """After revoke, ssh-keygen -Q reports the certificate REVOKED, and a second revoke adds
    nothing to the KRL (that sshd refuses it is the contract suite's)."""
    key = new_user_key(tmp_path)
    provider = ssh_ca.provider()
    ctx = ssh_ca.ctx(key)
    cert = save_cert(key, await provider.issue(ctx, now=time.time()), "cert")
    assert ssh_ca.verdict(cert) == "ok"
    await provider.revoke(ctx)
    assert ssh_ca.verdict(cert) == "REVOKED"
    listing = _krl_listing(ssh_ca.krl)
    await provider.revoke(ctx)
    assert ssh_ca.verdict(cert) == "REVOKED"
    assert _krl_listing(ssh_ca.krl) == listing  # the same revocations, none added twice


async def test_issuing_twice_shares_one_serial_that_one_revoke_ends(
    ssh_ca: SshCA, tmp_path: Path
) -> None:
    """A re-issue for one grant has the same serial, so one revoke ends both certificates."""
    key = new_user_key(tmp_path)
    provider = ssh_ca.provider()
    ctx = ssh_ca.ctx(key)
    cert1 = save_cert(key, await provider.issue(ctx, now=time.time()), "first")
    cert2 = save_cert(key, await provider.issue(ctx, now=time.time()), "second")
    await provider.revoke(ctx)
    for cert in (cert1, cert2):
        assert ssh_ca.verdict(cert) == "REVOKED"
        assert (await asyncio.to_thread(ssh_ca.sshd.login, key, cert)).returncode != 0


async def test_the_certificate_stops_working_at_expiry_without_any_revoke(
    ssh_ca: SshCA, tmp_path: Path
) -> None:
    """sshd refuses the certificate once the grant's expiry passes; the bot did nothing."""
    key = new_user_key(tmp_path)
    provider = ssh_ca.provider()
    ctx = ssh_ca.ctx(key, ttl_s=2.0)
    cert = save_cert(key, await provider.issue(ctx, now=time.time()), "cert")
    assert (await asyncio.to_thread(ssh_ca.sshd.login, key, cert)).returncode == 0
    # Validity ends at the whole second at or before expires_at.
    await asyncio.sleep(max(0.0, int(ctx.expires_at) + 1.2 - time.time()))
    login = await asyncio.to_thread(ssh_ca.sshd.login, key, cert)
    assert login.returncode != 0
    assert ssh_ca.verdict(cert) == "ok"  # not revoked: expired
    assert not await provider.check(ctx)


async def test_revoke_after_expiry_is_a_no_op_success(ssh_ca: SshCA, tmp_path: Path) -> None:
    """Revoking a grant whose certificate has expired (beyond the clock-skew allowance) leaves
    the KRL untouched and succeeds."""
    key = new_user_key(tmp_path)
    ctx = ssh_ca.ctx(key, ttl_s=60)
    await ssh_ca.provider().issue(ctx, now=time.time())
    later = ssh_ca.provider(clock=lambda: ctx.expires_at + CLOCK_SKEW_S + 1)
    before = ssh_ca.krl.read_bytes()
    await later.revoke(ctx)
    assert ssh_ca.krl.read_bytes() == before


async def test_a_private_key_or_junk_is_refused_without_echoing_it(
    ssh_ca: SshCA, tmp_path: Path
) -> None:
    """A pasted private key, a non-key and a missing key are refused, and the message never
    quotes what was sent."""
    key = new_user_key(tmp_path)
    provider = ssh_ca.provider()
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
    ssh_ca: SshCA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG, issue + revoke log neither the CA's private key nor the certificate body."""
    caplog.set_level(logging.DEBUG)
    key = new_user_key(tmp_path)
    provider = ssh_ca.provider()
    ctx = ssh_ca.ctx(key)
    cred = await provider.issue(ctx, now=time.time())
    await provider.revoke(ctx)
    ca_secret = ssh_ca.key.read_text().splitlines()[1]
    cert_body = (cred.get("certificate") or "").split()[1]
    assert caplog.records
    assert ca_secret not in caplog.text
    assert cert_body not in caplog.text
