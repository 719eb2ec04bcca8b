"""A credential sealed to the public key a pipeline's request carried: a libsodium sealed box
(X25519 + XSalsa20-Poly1305, through PyNaCl), so only the holder of the private key, which
never leaves the pipeline, can open it. grantbot keeps and serves only the sealed bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final

from nacl.exceptions import CryptoError
from nacl.exceptions import RuntimeError as NaclRuntimeError
from nacl.public import PrivateKey, PublicKey, SealedBox

from bot.domain.credentials import Credential
from bot.errors import UsageError

#: What the API names the construction (``algorithm`` in its answer).
ALGORITHM: Final = "libsodium-sealed-box-x25519"
PUBLIC_KEY_BYTES: Final = 32


def public_key_problem(text: str) -> str | None:
    """Why ``text`` is not a base64 X25519 public key (32 bytes), or None when it is."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return "public_key is not base64"
    if len(raw) != PUBLIC_KEY_BYTES:
        return f"public_key must be {PUBLIC_KEY_BYTES} bytes (an X25519 key), not {len(raw)}"
    try:
        # libsodium refuses to seal to a low-order point (all zeros among them): the shared
        # secret would be known to anyone. Found now, not once access has been issued.
        SealedBox(PublicKey(raw)).encrypt(b"probe")
    except (NaclRuntimeError, CryptoError, ValueError):
        return (
            "public_key is not a usable X25519 public key (a low-order point such as all"
            " zeros); send the public half of a key pair you generated"
        )
    return None


def credential_document(credential: Credential) -> dict[str, Any]:
    """The credential as the pipeline reads it once opened."""
    return {
        "ref": credential.ref,
        "expires_at": credential.expires_at,
        "fields": [
            {"label": f.label, "value": f.value, "secret": f.secret} for f in credential.fields
        ],
    }


def seal(credential: Credential, *, public_key: str) -> bytes:
    """``credential`` sealed to ``public_key`` (base64); UsageError for a bad key."""
    problem = public_key_problem(public_key)
    if problem is not None:
        raise UsageError(problem)
    box = SealedBox(PublicKey(base64.b64decode(public_key)))
    return bytes(box.encrypt(json.dumps(credential_document(credential)).encode()))


def new_key_pair() -> tuple[PrivateKey, str]:
    """A fresh key pair: the private key (kept by the caller) and the public key, base64."""
    key = PrivateKey.generate()
    return key, base64.b64encode(bytes(key.public_key)).decode("ascii")


def unseal(sealed: bytes, *, private_key: PrivateKey) -> dict[str, Any]:
    """Open what :func:`seal` made for ``private_key``'s public key; UsageError when it
    cannot be opened (another key, damaged bytes)."""
    try:
        opened = SealedBox(private_key).decrypt(sealed)
    except CryptoError as e:
        raise UsageError("the sealed credential cannot be opened with this key") from e
    document: dict[str, Any] = json.loads(opened)
    return document
