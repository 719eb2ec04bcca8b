"""A credential as the requester receives it: labelled values, the secret ones never shown.

Providers make them (:mod:`bot.providers`); the service hands them on; only the requester's DM
renders their values (:mod:`bot.slack.blocks.messages`). Pure values: nothing here reaches a
target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: Shown instead of a secret value wherever a credential is rendered for logs or debugging.
REDACTED: Final = "***"


@dataclass(frozen=True, slots=True)
class CredentialField:
    """One labelled value of a credential (host, port, user, password, certificate...)."""

    label: str
    value: str = field(repr=False)
    secret: bool = False

    def __repr__(self) -> str:
        shown = REDACTED if self.secret else repr(self.value)
        return f"CredentialField(label={self.label!r}, value={shown}, secret={self.secret})"

    __str__ = __repr__


@dataclass(frozen=True, kw_only=True, slots=True)
class Credential:
    """What the requester receives by DM. Secret field values never appear in repr/str.

    ``ref`` is a non-secret handle stored on the grant (login name, certificate serial).
    Render the fields for the DM by iterating ``fields``; use :meth:`secret_values` to scrub
    text that must not carry a secret (logs, channel messages, error reports).
    """

    ref: str
    expires_at: float
    fields: tuple[CredentialField, ...] = ()

    def secret_values(self) -> list[str]:
        """Every secret value in this credential, for scrubbing and for tests."""
        return [f.value for f in self.fields if f.secret]

    def get(self, label: str) -> str | None:
        """The value of the field labelled ``label``, or None."""
        for f in self.fields:
            if f.label == label:
                return f.value
        return None

    def __repr__(self) -> str:
        inner = ", ".join(repr(f) for f in self.fields)
        return f"Credential(ref={self.ref!r}, expires_at={self.expires_at}, fields=({inner}))"

    __str__ = __repr__
