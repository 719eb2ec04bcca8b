"""OpenSSH key text read once for registration and certification (bot.domain.ssh_keys)."""

from __future__ import annotations

import base64

import pytest

from bot.domain import ssh_keys

# A real ed25519 public key (made with ssh-keygen; the private half was discarded).
ED25519_BODY = "AAAAC3NzaC1lZDI1NTE5AAAAIAqn7bIKgOqIn1r7hBa3I+o0Y0kFPERaX1YVWrHVQTGF"


def _blob(*fields: bytes) -> bytes:
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)


def _body(*fields: bytes) -> str:
    return base64.b64encode(_blob(*fields)).decode()


def test_wire_fields_splits_length_prefixed_fields_and_stops_at_the_limit() -> None:
    """Fields come back in order; with a limit, what follows them is not read at all."""
    blob = _blob(b"ssh-ed25519", b"k" * 32)
    assert ssh_keys.wire_fields(blob) == [b"ssh-ed25519", b"k" * 32]
    assert ssh_keys.wire_fields(blob + b"\x00\x00", limit=1) == [b"ssh-ed25519"]
    assert ssh_keys.wire_fields(b"") == []


@pytest.mark.parametrize("blob", [b"\x00\x00\x00", b"\x00\x00\x00\x05abc", _blob(b"a") + b"\x00"])
def test_wire_fields_refuses_a_blob_cut_short(blob: bytes) -> None:
    """A length or a field that runs past the end is a ValueError."""
    with pytest.raises(ValueError, match="truncated"):
        ssh_keys.wire_fields(blob)


def test_key_type_in_body_reads_the_first_field() -> None:
    """The type a body names is its first field, whatever follows it."""
    assert ssh_keys.key_type_in_body(ED25519_BODY) == "ssh-ed25519"
    assert ssh_keys.key_type_in_body(_body(b"ssh-rsa", b"\x01")) == "ssh-rsa"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("", "empty"),  # no field at all
        ("AAAA", "truncated"),  # a length cut short
        ("AAAA!!!notbase64", "base64|padding|Non-base64"),
        ("AAAAC3NzaC1lZDI1NTE5AAAA\u00e9", "non-ASCII"),
        (_body(b"\xff\xfe"), "ascii"),  # a type that is not ASCII text
    ],
)
def test_key_type_in_body_refuses_what_cannot_name_a_type(body: str, why: str) -> None:
    """Empty, truncated, non-base64, non-ASCII or binary-typed bodies are a ValueError."""
    with pytest.raises(ValueError, match=why):
        ssh_keys.key_type_in_body(body)


def test_key_problem_accepts_a_well_formed_key_of_a_registrable_type() -> None:
    """A real ed25519 key and a well-formed FIDO ed25519 key have no problem."""
    assert ssh_keys.key_problem("ssh-ed25519", ED25519_BODY) is None
    sk = _body(b"sk-ssh-ed25519@openssh.com", bytes(32), b"ssh:")
    assert ssh_keys.key_problem("sk-ssh-ed25519@openssh.com", sk) is None


@pytest.mark.parametrize(
    ("key_type", "body", "problem"),
    [
        ("ssh-dss", ED25519_BODY, "not an OpenSSH public key of type"),
        ("ssh-ed25519", None, "the key has no body after ssh-ed25519"),
        ("ssh-ed25519", "AAAA!!!", "not valid base64 SSH key data"),
        ("ssh-rsa", ED25519_BODY, "not a ssh-rsa key"),
        ("ssh-ed25519", _body(b"ssh-ed25519", b"short"), "malformed"),
        ("ssh-rsa", _body(b"ssh-rsa", b"\x01\x00\x01"), "malformed"),
        ("ssh-rsa", _body(b"ssh-rsa", b"\x01\x00\x01", b"\x7f" + bytes(127)), "has 1023 bits"),
    ],
)
def test_key_problem_names_the_problem_without_quoting_the_body(
    key_type: str, body: str | None, problem: str
) -> None:
    """Each refusal says what is wrong and quotes nothing of the key's body."""
    found = ssh_keys.key_problem(key_type, body)
    assert found is not None
    assert problem in found
    assert "AAAA" not in found


@pytest.mark.parametrize(
    ("text", "private"),
    [
        ("-----BEGIN OPENSSH " + "PRIVATE KEY-----", True),
        ("-----BEGIN " + "PRIVATE KEY-----", True),
        ("PuTTY-User-Key-File-3: ssh-ed25519", True),
        ("b3BlbnNzaC1rZXktdjEAAAAABG5vbmU", True),  # an OpenSSH private key body
        ("rotate the private key after INC-7", False),
        ("ssh-ed25519 " + ED25519_BODY, False),
    ],
)
def test_contains_private_key_recognises_key_material_not_words(text: str, private: bool) -> None:
    """PEM headers, PuTTY files and OpenSSH private bodies are recognised; prose is not."""
    assert ssh_keys.contains_private_key(text) is private
