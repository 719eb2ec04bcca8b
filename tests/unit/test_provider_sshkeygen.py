"""Checks on the SSH public key a requester sends, before ssh-keygen ever sees it."""

from __future__ import annotations

import pytest

from bot.domain import ssh_keys
from bot.errors import ProviderError
from bot.providers.sshkeygen import KEY_TYPES, normalize_public_key, utc_stamp

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAqn7bIKgOqIn1r7hBa3I+o0Y0kFPERaX1YVWrHVQTGF"
ECDSA = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBN4+Kln6ZqLkWjF/"
    "x093gt6tZMQS2IqvsEQxFX+0rGiT8Iv/KQqWHqoo3eqlq7r3Y64jZVLxaCmdVc9wlH6l3Jg="
)


def test_a_public_key_line_is_normalised_without_its_comment() -> None:
    """Whitespace and the comment are dropped; type and key data are kept."""
    assert normalize_public_key(f"  {ED25519} alice@laptop\n") == ED25519
    assert normalize_public_key(ECDSA) == ECDSA


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n", "PRIVATE key"),
        ("ssh-rsa " + ED25519.split()[1], "does not match its declared type"),
        ("ssh-ed25519 AAAA", "corrupt"),
        (ED25519 + "\n" + ECDSA, "not an OpenSSH public key"),
        ("ssh-ed25519-cert-v01@openssh.com " + ED25519.split()[1], "cannot be certified"),
        ("hello", "not an OpenSSH public key"),
    ],
)
def test_bad_keys_are_refused_with_a_reason_and_no_echo(sent: str, reason: str) -> None:
    """Private keys, mismatched types, corrupt data, several lines, certificates and junk are
    refused; the message never quotes the key data."""
    with pytest.raises(ProviderError, match=reason) as refused:
        normalize_public_key(sent)
    assert "b3BlbnNzaC1rZXktdjEA" not in str(refused.value)
    assert ED25519.split()[1] not in str(refused.value)


def test_validity_timestamps_are_explicit_utc() -> None:
    """ssh-keygen -V gets YYYYMMDDHHMMSSZ in UTC, whatever the local time zone."""
    assert utc_stamp(1_795_000_000.9) == "20261118110640Z"


def test_every_key_a_requester_may_register_can_be_certified() -> None:
    """The provider certifies every type registration accepts (and one more it signs)."""
    assert set(ssh_keys.KEY_TYPES) < KEY_TYPES
