"""The admin DSN of the MySQL/MariaDB provider read into PyMySQL's connection arguments.

``mysql://user:password@host:port/db?option=value&…``. The options, each named as PyMySQL
names it:

- ``ssl_ca`` (a CA file: TLS, the server's certificate checked against it), ``ssl_cert`` /
  ``ssl_key`` (a client certificate), ``ssl_verify_cert`` and ``ssl_verify_identity``
  (``true``/``false``), ``ssl=true`` (TLS checked against the system's CAs);
- ``server_public_key`` (a PEM file): the server's RSA key for ``caching_sha2_password`` (MySQL
  8's default) and ``sha256_password`` over plain TCP; without it PyMySQL asks the server for
  it. Either way the password is RSA-encrypted by PyMySQL's ``rsa`` extra (``cryptography``).
  Over TLS no RSA is needed.

An unknown option, or a value that is not one, is a ValueError naming it (a policy check
finding), never silently ignored.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_PORT: Final = 3306
_FILES: Final = ("ssl_ca", "ssl_cert", "ssl_key")
_FLAGS: Final = ("ssl_verify_cert", "ssl_verify_identity", "ssl")
_TRUE: Final = ("true", "1", "yes")
_FALSE: Final = ("false", "0", "no")
OPTIONS: Final = (*_FILES, *_FLAGS, "server_public_key")


def dsn_options(dsn: str) -> dict[str, str | bool]:
    """The DSN's query options, checked (ValueError naming a bad one)."""
    options: dict[str, str | bool] = {}
    for name, value in parse_qsl(urlsplit(dsn).query, keep_blank_values=True):
        if name in _FLAGS:
            if value.lower() not in (*_TRUE, *_FALSE):
                raise ValueError(f"dsn option {name} must be true or false")
            options[name] = value.lower() in _TRUE
        elif name in (*_FILES, "server_public_key"):
            if not value:
                raise ValueError(f"dsn option {name} needs a file path")
            options[name] = value
        else:
            raise ValueError(f"dsn has an unknown option {name!r} (known: {', '.join(OPTIONS)})")
    return options


def admin_args(dsn: str, *, connect_timeout_s: float) -> dict[str, Any]:
    """PyMySQL ``connect`` keyword arguments for the admin in ``dsn``."""
    parts = urlsplit(dsn)
    args: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or DEFAULT_PORT,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": unquote(parts.path.lstrip("/")) or None,
        "connect_timeout": connect_timeout_s,
        "read_timeout": connect_timeout_s * 6,
        "write_timeout": connect_timeout_s * 6,
        "autocommit": True,
        "charset": "utf8mb4",
    }
    options = dsn_options(dsn)
    if options.pop("ssl", False) and not any(k in options for k in _FILES):
        args["ssl"] = ssl.create_default_context()
    key_file = options.pop("server_public_key", None)
    if isinstance(key_file, str):
        args["server_public_key"] = Path(key_file).read_bytes()
    args.update(options)
    return args
