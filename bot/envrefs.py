"""``${VAR}`` references in provider settings, resolved from the environment.

Secrets (DSNs, webhook keys) live in the environment, and policies.yaml names them as
``${ORDERS_DB_DSN}``. A reference may be the whole value or part of a string. Errors name the
variable and the setting's key, never a value.

Every value substituted is registered with the log redaction filter: references are how the
policy carries secrets, so whatever one resolves to is masked should it ever reach a log line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.domain.policy.schema import ENV_REFERENCE_RE
from bot.errors import ConfigError
from bot.logs import register_secret


def has_reference(value: object) -> bool:
    """True when ``value`` is a string that still contains a ``${VAR}`` reference."""
    return isinstance(value, str) and ENV_REFERENCE_RE.search(value) is not None


def referenced_names(value: Any) -> list[str]:
    """Every variable name referenced anywhere in ``value`` (strings, mappings, lists)."""
    if isinstance(value, str):
        return ENV_REFERENCE_RE.findall(value)
    if isinstance(value, Mapping):
        return [n for v in value.values() for n in referenced_names(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in referenced_names(v)]
    return []


def resolve(value: Any, *, env: Mapping[str, str], key: str = "") -> Any:
    """``value`` with each reference replaced from ``env`` (recursing into mappings/lists).

    Raises :class:`ConfigError` naming the variable and ``key`` when ``env`` lacks it.
    """
    if isinstance(value, str):

        def substitute(m: re.Match[str]) -> str:
            name = m[1]
            if name not in env:
                where = f" (setting {key})" if key else ""
                raise ConfigError(f"environment variable {name} is not set{where}")
            register_secret(env[name])
            return env[name]

        return ENV_REFERENCE_RE.sub(substitute, value)
    if isinstance(value, Mapping):
        return {
            k: resolve(v, env=env, key=f"{key}.{k}" if key else str(k)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [resolve(v, env=env, key=f"{key}[{i}]") for i, v in enumerate(value)]
    return value
