"""${VAR} references: the one resolver used by the service and the providers."""

from __future__ import annotations

import secrets

import pytest

from bot.envrefs import referenced_names, resolve
from bot.errors import ConfigError
from bot.logs import REDACTED, redact


def test_resolve_replaces_references_and_names_missing_ones() -> None:
    """resolve fills ${VAR}s in nested settings and raises ConfigError naming the variable
    and the setting, never a value."""
    settings = {"dsn": "postgres://app:${PW}@db/x", "roles": ["${ROLE}", 3], "n": 1}
    assert resolve(settings, env={"PW": "p", "ROLE": "r"}) == {
        "dsn": "postgres://app:p@db/x",
        "roles": ["r", 3],
        "n": 1,
    }
    with pytest.raises(
        ConfigError, match=r"^environment variable ROLE is not set \(setting roles\[0\]\)$"
    ):
        resolve(settings, env={"PW": "secret-value"})
    assert referenced_names(settings) == ["PW", "ROLE"]


def test_resolved_values_are_masked_in_logs() -> None:
    """Whatever a reference resolves to is registered with the redaction filter: a value with
    no secret-like shape (here a bare webhook key) is still masked if it reaches a log line."""
    key = "k" + secrets.token_hex(10)
    assert resolve({"secret": "${HOOK_KEY}"}, env={"HOOK_KEY": key}) == {"secret": key}
    assert redact(f"posting with {key} failed") == f"posting with {REDACTED} failed"
