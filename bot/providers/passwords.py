"""Random secrets for issued logins. Generated with :mod:`secrets`; never logged."""

from __future__ import annotations

import secrets
from typing import Final

#: 24 random bytes = 192 bits; token_urlsafe's alphabet ([A-Za-z0-9_-]) needs no quoting in
#: SQL literals, Redis ACL rules or URLs.
PASSWORD_BYTES: Final = 24


def new_password() -> str:
    """A fresh random password, URL- and identifier-safe (32 characters)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)
