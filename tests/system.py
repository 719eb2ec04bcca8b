"""What the machine must provide beyond Python packages, and what a test does without it.

A test that needs a system binary or service says so with ``@pytest.mark.needs("sshd")`` (or
``pytestmark``). Before it runs, the requirement is probed once per session. When it is
missing the test is skipped with one reason naming what to install, and the run ends with one
line per missing requirement; under ``CI=true`` the same absence fails the test instead, so
CI always runs everything. ``make test`` installs the Debian packages it can (see
scripts/system-deps), so on a fresh machine of the project's kind nothing is skipped.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Final

PG_HOST, PG_PORT = "127.0.0.1", 5432
MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _binary(name: str, *extra_globs: str) -> bool:
    if shutil.which(name):
        return True
    return any(glob.glob(pattern) for pattern in (f"/usr/sbin/{name}", *extra_globs))


@dataclass(frozen=True, slots=True)
class Requirement:
    """A probe and, when it fails, what to install."""

    what: str
    install: str
    probe: Callable[[], bool]

    @property
    def reason(self) -> str:
        return f"{self.what} not found: install {self.install}"


REQUIREMENTS: Final[dict[str, Requirement]] = {
    "sshd": Requirement(
        "sshd", "openssh-server (apt-get install openssh-server)", lambda: _binary("sshd")
    ),
    "ssh": Requirement(
        "ssh and ssh-keygen",
        "openssh-client (apt-get install openssh-client)",
        lambda: bool(shutil.which("ssh") and shutil.which("ssh-keygen")),
    ),
    "postgres": Requirement(
        f"PostgreSQL on {PG_HOST}:{PG_PORT} (with initdb/pg_ctl)",
        "PostgreSQL and start it (apt-get install postgresql)",
        lambda: (
            _answers(PG_HOST, PG_PORT) and _binary("initdb", "/usr/lib/postgresql/*/bin/initdb")
        ),
    ),
    "chromium": Requirement(
        "chromium (headless, for the report's browser test)",
        "chromium (apt-get install chromium)",
        lambda: bool(shutil.which("chromium") or shutil.which("chromium-browser")),
    ),
    "mysql": Requirement(
        f"MariaDB/MySQL on {MYSQL_HOST}:{MYSQL_PORT}",
        "MariaDB and start it (apt-get install mariadb-server)",
        lambda: _answers(MYSQL_HOST, MYSQL_PORT),
    ),
    "mariadbd": Requirement(
        "mariadbd and mariadb-install-db (a private MariaDB server)",
        "mariadb-server (apt-get install mariadb-server)",
        lambda: (
            (_binary("mariadbd") or _binary("mysqld"))
            and bool(shutil.which("mariadb-install-db") or shutil.which("mysql_install_db"))
        ),
    ),
}


@cache
def present(name: str) -> bool:
    """Whether requirement ``name`` is met on this machine (probed once per session)."""
    return REQUIREMENTS[name].probe()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
