"""SCRAM-SHA-256 password verifiers, computed here so a clear password never reaches the server.

PostgreSQL stores ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (RFC 5802 /
RFC 7677) and accepts that string in ``CREATE/ALTER ROLE ... PASSWORD`` as already hashed,
exactly as psql's ``\\password`` does. Sending the verifier instead of the password keeps the
password out of server logs (log_statement = ddl) and pg_stat_statements.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

#: PostgreSQL's default (scram_iterations); the server verifies whatever count is stored.
ITERATIONS: Final = 4096
SALT_BYTES: Final = 16


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def scram_sha256_verifier(
    password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS
) -> str:
    """The stored form of ``password``. ASCII passwords only: SASLprep of ASCII is identity."""
    if not password.isascii():
        raise ValueError("only ASCII passwords are supported (SASLprep is not implemented)")
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"
