"""Names at targets, derived from the grant id alone, so revoke/check need nothing secret.

``g-7k3p9xqm`` becomes the login ``gb_g_7k3p9xqm``: a valid unquoted SQL identifier, MySQL
account name and Redis ACL user name, recognisable to an operator and mapped back to its grant
by the reconciler. The same id gives the SSH certificate serial, a unique number per grant.
"""

from __future__ import annotations

import re
from typing import Final

from bot.errors import ProviderError

#: Every login grantbot creates starts with this; nothing else at a target may.
LOGIN_PREFIX: Final = "gb_"
GRANT_PREFIX: Final = "g-"
#: Grant-id characters after "g-" (a superset of bot.domain.ids.ALPHABET).
ID_CHARS: Final = "23456789abcdefghijklmnopqrstuvwxyz"
#: 12 characters keep the login under MySQL's 32-character user-name limit and the serial
#: below 2**63 (34**12 * 34/33 ~ 2.4e18 < 9.2e18).
MAX_ID_CHARS: Final = 12

_GRANT_ID_RE: Final = re.compile(rf"^{GRANT_PREFIX}[{ID_CHARS}]{{1,{MAX_ID_CHARS}}}$")
_LOGIN_RE: Final = re.compile(rf"^{LOGIN_PREFIX}g_([{ID_CHARS}]{{1,{MAX_ID_CHARS}}})$")
#: LIKE pattern matching every grantbot login (``_`` escaped: it is LIKE's one-char wildcard).
LOGIN_LIKE: Final = "gb\\_g\\_%"


def check_grant_id(grant_id: str) -> str:
    """Return ``grant_id`` if it can name things at a target; raise ProviderError if not."""
    if not _GRANT_ID_RE.match(grant_id):
        raise ProviderError(
            f"grant id {grant_id!r} cannot name a login: expected g- and 1-{MAX_ID_CHARS} "
            "of [a-z2-9]"
        )
    return grant_id


def login_name(grant_id: str) -> str:
    """The login/user/ACL name of ``grant_id`` at every target, e.g. ``gb_g_7k3p9xqm``."""
    return LOGIN_PREFIX + check_grant_id(grant_id).replace("-", "_")


def grant_id_from_login(name: str) -> str | None:
    """The grant id a login was made for, or None when it is not a grantbot login."""
    m = _LOGIN_RE.match(name)
    return GRANT_PREFIX + m[1] if m else None


def cert_serial(grant_id: str) -> int:
    """A positive SSH certificate serial unique to ``grant_id``.

    Bijective base-34 numeration (digits 1..34), so ids of different lengths never collide
    (``g-2`` -> 1, ``g-22`` -> 35) and the serial is never 0, which ssh-keygen treats as unset.
    """
    digits = check_grant_id(grant_id)[len(GRANT_PREFIX) :]
    value = 0
    for ch in digits:
        value = value * len(ID_CHARS) + ID_CHARS.index(ch) + 1
    return value


def grant_id_from_serial(serial: int) -> str | None:
    """Inverse of :func:`cert_serial`; None for a serial no grant id maps to."""
    if serial <= 0:
        return None
    chars: list[str] = []
    base = len(ID_CHARS)
    while serial > 0:
        serial, rem = divmod(serial - 1, base)
        chars.append(ID_CHARS[rem])
    if len(chars) > MAX_ID_CHARS:
        return None
    return GRANT_PREFIX + "".join(reversed(chars))
