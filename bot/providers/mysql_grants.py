"""Strict parsing of the policy's MySQL/MariaDB grant strings, e.g. ``SELECT ON billing.*``.

Accepted: ``<privilege>[, <privilege>...] ON <db>.<table|*>``, nothing else. Privileges come
from an allow-list of object-level privileges; ``ALL``, ``GRANT OPTION`` and server-wide
privileges (SUPER, FILE, PROCESS, CREATE USER...) are refused, as are global (``*.*``) grants
and the system schemas. Names are plain identifiers ([A-Za-z0-9_$]). The rendered statement
backquotes every name, so nothing from the policy reaches SQL unquoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: Object-level privileges a just-in-time grant may hand out.
ALLOWED_PRIVILEGES: Final = frozenset(
    {
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "EXECUTE",
        "SHOW VIEW",
        "CREATE",
        "DROP",
        "ALTER",
        "INDEX",
        "CREATE VIEW",
        "CREATE TEMPORARY TABLES",
        "LOCK TABLES",
        "TRIGGER",
        "REFERENCES",
        "CREATE ROUTINE",
        "ALTER ROUTINE",
        "EVENT",
    }
)
#: Schemas holding the server's own accounts and internals (mysql.user has password hashes).
SYSTEM_SCHEMAS: Final = frozenset({"mysql", "information_schema", "performance_schema", "sys"})

_GRANT_RE: Final = re.compile(r"^\s*(?P<privs>.+?)\s+ON\s+(?P<target>\S+)\s*$", re.IGNORECASE)
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_$]{1,64}$")


@dataclass(frozen=True, slots=True)
class MySQLGrant:
    """One validated grant: privileges on ``db``.``table`` (``table`` may be ``*``)."""

    privileges: tuple[str, ...]
    db: str
    table: str

    def __str__(self) -> str:
        return f"{', '.join(self.privileges)} ON {self.db}.{self.table}"

    def statement(self) -> str:
        """``GRANT ... ON `db`.`t` TO %s@%s`` (account as pymysql parameters).

        In a database-level grant (``db.*``) MySQL reads ``_`` and ``%`` in the database name
        as wildcards (``my_db`` would also match ``myXdb``), so ``_`` is escaped there; in a
        table-level grant names are literal.
        """
        db = self.db.replace("_", r"\_") if self.table == "*" else self.db
        table = "*" if self.table == "*" else f"`{self.table}`"
        return f"GRANT {', '.join(self.privileges)} ON `{db}`.{table} TO %s@%s"


def parse_grant(text: str) -> MySQLGrant:
    """Parse and validate one grant string; ValueError says what is wrong and what is allowed."""
    m = _GRANT_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not '<privileges> ON <db>.<table>'")
    privileges: list[str] = []
    for raw in m["privs"].split(","):
        priv = " ".join(raw.upper().split())
        if priv not in ALLOWED_PRIVILEGES:
            allowed = ", ".join(sorted(ALLOWED_PRIVILEGES))
            raise ValueError(f"privilege {raw.strip()!r} is not allowed; allowed: {allowed}")
        if priv not in privileges:
            privileges.append(priv)
    db, dot, table = m["target"].partition(".")
    if not dot or not _NAME_RE.match(db) or not (table == "*" or _NAME_RE.match(table)):
        raise ValueError(
            f"{m['target']!r} is not <db>.<table> or <db>.* with plain names ([A-Za-z0-9_$]); "
            "global grants (*.*) are not allowed"
        )
    if db.lower() in SYSTEM_SCHEMAS:
        raise ValueError(f"grants on the system schema {db!r} are not allowed")
    return MySQLGrant(privileges=tuple(privileges), db=db, table=table)
