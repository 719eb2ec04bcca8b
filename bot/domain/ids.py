"""Request/grant ids: short, unguessable, easy to type in Slack, e.g. ``g-7k3p9xqm``."""

from __future__ import annotations

import re
import secrets
from typing import Final

# No 0/o, 1/l/i: ids get read aloud and retyped from screenshots.
ALPHABET: Final = "23456789abcdefghjkmnpqrstuvwxyz"
ID_LENGTH: Final = 8  # 31**8 ~ 8.5e11 (~39 bits): unguessable in practice, still typeable.
PREFIX: Final = "g-"
GRANT_ID_RE: Final = re.compile(rf"{PREFIX}[{ALPHABET}]{{{ID_LENGTH}}}")


def new_grant_id() -> str:
    """A fresh random id. Uniqueness is enforced by the store (create is set-if-absent)."""
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))


def is_grant_id(text: str) -> bool:
    """True when ``text`` has the shape of a grant id (says nothing of whether it exists)."""
    return GRANT_ID_RE.fullmatch(text) is not None
