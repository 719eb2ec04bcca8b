"""Credentials as the requester receives them: secret values never shown in repr or str."""

from __future__ import annotations

from bot.domain.credentials import REDACTED, Credential, CredentialField
from tests.factories import NOW

PASSWORD = "s3cr3t-Pa55w0rd-value"


def _cred() -> Credential:
    return Credential(
        ref="gb_g_7k3p9xqm",
        expires_at=NOW,
        fields=(
            CredentialField("user", "gb_g_7k3p9xqm"),
            CredentialField("password", PASSWORD, secret=True),
            CredentialField("url", f"postgresql://u:{PASSWORD}@h/db", secret=True),
        ),
    )


def test_credential_repr_and_str_redact_every_secret_field() -> None:
    """repr/str of a credential and of its fields show non-secret values and hide secret ones."""
    cred = _cred()
    for text in (repr(cred), str(cred), repr(cred.fields), f"{cred}"):
        assert PASSWORD not in text
        assert REDACTED in text
        assert "gb_g_7k3p9xqm" in text


def test_secret_values_lists_exactly_the_secret_fields() -> None:
    """secret_values() returns each secret field's value and nothing else."""
    assert _cred().secret_values() == [PASSWORD, f"postgresql://u:{PASSWORD}@h/db"]
    assert _cred().get("user") == "gb_g_7k3p9xqm"
    assert _cred().get("missing") is None
