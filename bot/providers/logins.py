"""The credential of a login at a database-like target (PostgreSQL, MySQL, Redis ACL).

One place decides which of a login's fields are secret: the password and the URL that
embeds it. A target that cannot expire a login itself also gets a note saying when grantbot
ends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.domain.credentials import Credential, CredentialField


def login_credential(
    name: str,
    password: str,
    *,
    expires_at: float,
    where: Sequence[tuple[str, str]],
    url_label: str,
    url: str,
    expiry_note: str | None = None,
) -> Credential:
    """``where`` (host, port, database...), then user, password and ``url`` (under
    ``url_label``), then ``expiry_note`` with ``{at}`` filled with ``expires_at`` in UTC."""
    fields = [
        *(CredentialField(label, value) for label, value in where),
        CredentialField("user", name),
        CredentialField("password", password, secret=True),
        CredentialField(url_label, url, secret=True),
    ]
    if expiry_note is not None:
        at = datetime.fromtimestamp(expires_at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        fields.append(CredentialField("note", expiry_note.format(at=at)))
    return Credential(ref=name, expires_at=expires_at, fields=tuple(fields))
