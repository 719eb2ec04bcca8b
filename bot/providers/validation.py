"""Turning pydantic validation errors into messages that name keys and never echo values.

A setting's value may be a resolved secret (a DSN with a password in it), so messages are
built from the error location and pydantic's description only, never from ``input``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ValidationError

from bot.errors import ProviderError
from bot.providers.base import GrantContext, ProviderSettings

M = TypeVar("M", bound=ProviderSettings)


def key_path(loc: tuple[int | str, ...], *, prefix: str = "") -> str:
    """``("grant_roles", 0)`` -> ``grant_roles[0]``, under ``prefix`` if given."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(settings)"


def error_messages(e: ValidationError, *, prefix: str = "") -> list[str]:
    """One ``"<key path>: <what is wrong>"`` line per error, without the offending value."""
    out: list[str] = []
    for err in e.errors(include_input=False, include_url=False):
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        out.append(f"{key_path(tuple(err['loc']), prefix=prefix)}: {msg}")
    return out


def parse_role_settings(model: type[M], ctx: GrantContext) -> M:
    """The role-level settings of ``ctx`` as ``model``; ProviderError naming keys if invalid."""
    return parse_settings(model, ctx.role_settings, what=f"role {ctx.role} of {ctx.resource}")


def parse_settings(model: type[M], data: Mapping[str, Any], *, what: str) -> M:
    """``data`` validated as ``model``; ProviderError naming ``what`` and the bad keys."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:
        raise ProviderError(
            f"invalid provider settings for {what}: " + "; ".join(error_messages(e))
        ) from None  # the cause would carry the values
