"""Ed25519 keys for audit checkpoints: made, loaded and named (the key id).

The private key lives outside Redis (``GRANTBOT_AUDIT_SIGNING_KEY``: a PEM file's path, the
PEM text itself, or the 32-byte seed in base64), so someone who can write Redis cannot sign.
A public key is given to ``grantbot audit verify --public-key`` as its base64 (what
``grantbot audit keygen`` prints), as PEM, or as a file holding either. A key's id is the
first 16 hex digits of the SHA-256 of its 32 raw bytes; checkpoints carry it, so after a
rotation the old and the new public key each check their own checkpoints.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.errors import ConfigError

SIGNING_KEY_ENV: Final = "GRANTBOT_AUDIT_SIGNING_KEY"
_RAW = serialization.Encoding.Raw
_RAW_PUBLIC = serialization.PublicFormat.Raw


def key_id(public: Ed25519PublicKey) -> str:
    """The short name of a public key, carried by every checkpoint it signs."""
    return hashlib.sha256(public.public_bytes(_RAW, _RAW_PUBLIC)).hexdigest()[:16]


def public_text(public: Ed25519PublicKey) -> str:
    """The public key as one line of base64 (what ``--public-key`` takes)."""
    return base64.b64encode(public.public_bytes(_RAW, _RAW_PUBLIC)).decode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key and its id."""

    private: Ed25519PrivateKey
    key_id: str

    def sign(self, data: bytes) -> str:
        """The base64 signature of ``data``."""
        return base64.b64encode(self.private.sign(data)).decode()

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


def generate() -> tuple[bytes, SigningKey]:
    """A new key: its PKCS#8 PEM (to store as a secret) and the loaded key."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, SigningKey(private=private, key_id=key_id(private.public_key()))


def load_signing_key(value: str) -> SigningKey:
    """The key ``GRANTBOT_AUDIT_SIGNING_KEY`` names: PEM text, a path to a PEM (or base64
    seed) file, or a base64 seed. ConfigError naming the variable, never its value."""
    loaded = _load(
        value,
        what=SIGNING_KEY_ENV,
        pem=lambda data: serialization.load_pem_private_key(data, password=None),
        raw=Ed25519PrivateKey.from_private_bytes,
        not_a_key=f"{SIGNING_KEY_ENV}: not an Ed25519 private key (PEM, or a 32-byte base64 seed)",
    )
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigError(f"{SIGNING_KEY_ENV}: the key is not an Ed25519 key")
    return SigningKey(private=loaded, key_id=key_id(loaded.public_key()))


def load_public_key(value: str) -> Ed25519PublicKey:
    """A public key given as base64, PEM, or a file holding either (ConfigError if not)."""
    loaded = _load(
        value,
        what="--public-key",
        pem=serialization.load_pem_public_key,
        raw=Ed25519PublicKey.from_public_bytes,
        not_a_key=f"--public-key {value[:60]!r}: not an Ed25519 public key (base64 or PEM)",
    )
    if not isinstance(loaded, Ed25519PublicKey):
        raise ConfigError(f"--public-key {value[:60]!r}: not an Ed25519 key")
    return loaded


def _load(
    value: str,
    *,
    what: str,
    pem: Callable[[bytes], object],
    raw: Callable[[bytes], object],
    not_a_key: str,
) -> object:
    """``value`` (PEM, base64 of the 32 raw bytes, or a file holding either) parsed by ``pem``
    or ``raw``; ConfigError ``not_a_key`` when it does not parse (the caller words it, so it
    never echoes key material). The caller checks the kind of key it got."""
    text = _file_or_text(value.strip(), what=what)
    try:
        return pem(text.encode()) if text.startswith("-----BEGIN") else raw(_b64(text, size=32))
    except (ValueError, TypeError, binascii.Error) as e:
        raise ConfigError(not_a_key) from e


def verify_signature(public: Ed25519PublicKey, data: bytes, sig: str) -> bool:
    """Whether ``sig`` (base64) is ``public``'s signature of ``data``."""
    try:
        public.verify(base64.b64decode(sig, validate=True), data)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def _b64(text: str, *, size: int) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != size:
        raise ValueError(f"expected {size} bytes, got {len(raw)}")
    return raw


def _file_or_text(value: str, *, what: str) -> str:
    """``value`` itself when it is key material (PEM, or base64 of 32 bytes), else the
    contents of the file it names. Errors name ``what`` and never echo key material."""
    if value.startswith("-----BEGIN"):
        return value
    try:
        _b64(value, size=32)
    except (ValueError, binascii.Error):
        pass
    else:
        return value
    try:
        return Path(value).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(
            f"{what}: neither a key (PEM or base64) nor a readable file ({e.strerror})"
        ) from e
