"""OpenSSH keys as text: public keys checked field by field, private keys recognised.

A requester registers one OpenSSH public key (``<type> <base64> [comment]``) and the ssh_cert
provider has it certified. Both read the key's body the same way here: base64, then the SSH
wire format's length-prefixed fields (RFC 4251), the first of which names the key type.

Messages never quote the key: whoever pastes key material may have pasted a secret.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import re
from typing import Final

#: The provider type whose roles issue a certificate for the requester's registered key.
SSH_CERT_PROVIDER_TYPE: Final = "ssh_cert"

#: Public key types a requester may register.
KEY_TYPES: Final = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
)
MIN_RSA_BITS: Final = 2048
# Uncompressed EC point sizes (0x04 || X || Y) per curve, RFC 5656.
_EC_POINT_BYTES: Final = {"nistp256": 65, "nistp384": 97, "nistp521": 133}

# Case-sensitive on purpose: a reason may well say "rotate the private key".
_PRIVATE_KEY_RE: Final = re.compile(
    r"BEGIN[A-Z0-9 ]*PRIVATE KEY"
    r"|PuTTY-User-Key-File-"
    r"|b3BlbnNzaC1rZXktdjE"  # base64 of "openssh-key-v1": an OpenSSH private key body
)
_MALFORMED: Final = "the key's body is malformed; copy the whole line unchanged"


def contains_private_key(text: str) -> bool:
    """True when ``text`` looks like it holds a private key (PEM, PuTTY or an OpenSSH key
    body). Such text is refused wherever it appears and never quoted back."""
    return _PRIVATE_KEY_RE.search(text) is not None


def wire_fields(blob: bytes, *, limit: int | None = None) -> list[bytes]:
    """Split an SSH wire-format blob into its length-prefixed fields (RFC 4251 string/mpint),
    stopping after ``limit`` fields when given. ValueError when a field is cut short."""
    fields: list[bytes] = []
    pos = 0
    while pos < len(blob) and (limit is None or len(fields) < limit):
        if pos + 4 > len(blob):
            raise ValueError("truncated length")
        size = int.from_bytes(blob[pos : pos + 4], "big")
        pos += 4
        if pos + size > len(blob):
            raise ValueError("truncated field")
        fields.append(blob[pos : pos + size])
        pos += size
    return fields


def decode_body(body: str, *, limit: int | None = None) -> list[bytes]:
    """The wire fields of a key's base64 body (see :func:`wire_fields`). ValueError when it is
    not strict ASCII base64 or its fields are cut short."""
    if not body.isascii():
        raise ValueError("non-ASCII")
    return wire_fields(base64.b64decode(body, validate=True), limit=limit)


def key_type_in_body(body: str) -> str:
    """The key type a key's base64 body names in its first field (it must match the type
    written before it). ValueError when the body cannot say."""
    first = decode_body(body, limit=1)
    if not first:
        raise ValueError("empty")
    return first[0].decode("ascii")


def key_problem(key_type: str, body: str | None) -> str | None:
    """Why ``<key_type> <body>`` is not a public key a requester may register, or None when it
    is: a type of :data:`KEY_TYPES` with a body (``None``: there was none) of that type,
    well formed, and for RSA at least :data:`MIN_RSA_BITS` bits. Quotes nothing of the body."""
    if key_type not in KEY_TYPES:
        return (
            "that is not an OpenSSH public key of type ssh-ed25519,"
            " ecdsa-sha2-nistp256/384/521, ssh-rsa or sk-ssh-ed25519@openssh.com"
        )
    if body is None:
        return f"the key has no body after {key_type}"
    try:
        fields = decode_body(body)
    except ValueError:  # binascii.Error among them
        return "the key's body is not valid base64 SSH key data"
    return _fields_problem(key_type, fields)


def _fields_problem(key_type: str, fields: list[bytes]) -> str | None:
    """Why ``fields`` is not a well-formed ``key_type`` public key, or None when it is."""
    if not fields or fields[0] != key_type.encode():
        return f"the key's body is not a {key_type} key; copy the whole line unchanged"
    rest = fields[1:]
    if key_type == "ssh-ed25519":
        ok = len(rest) == 1 and len(rest[0]) == 32
    elif key_type == "sk-ssh-ed25519@openssh.com":  # key, application (PROTOCOL.u2f)
        ok = len(rest) == 2 and len(rest[0]) == 32 and len(rest[1]) > 0
    elif key_type.startswith("ecdsa-sha2-"):  # curve name, uncompressed point (RFC 5656)
        curve = key_type.removeprefix("ecdsa-sha2-")
        ok = (
            len(rest) == 2
            and rest[0] == curve.encode()
            and len(rest[1]) == _EC_POINT_BYTES[curve]
            and rest[1][0] == 4
        )
    else:  # ssh-rsa: e, n as mpints (RFC 4253)
        if len(rest) != 2:
            return _MALFORMED
        bits = int.from_bytes(rest[1], "big").bit_length()
        if bits < MIN_RSA_BITS:
            return f"that RSA key has {bits} bits; use at least {MIN_RSA_BITS}, or better ed25519"
        ok = int.from_bytes(rest[0], "big") > 1
    return None if ok else _MALFORMED
