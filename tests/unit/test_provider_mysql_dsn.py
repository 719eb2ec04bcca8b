"""The MySQL provider's admin DSN: TLS options and the server's RSA key reach PyMySQL as its
own arguments, a bad option is refused by name, and MySQL 8's caching_sha2_password path over
plain TCP has what it needs (PyMySQL's rsa extra).

MariaDB, the server these tests have, implements neither caching_sha2_password nor (here) TLS,
so the full handshake is not run: what is pinned is that the DSN is accepted and mapped, and
that PyMySQL's RSA step, the one its rsa extra provides, works."""

from __future__ import annotations

import ssl
from pathlib import Path

import pymysql._auth
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA1

from bot.providers.mysql import MySQLProvider, MySQLSettings
from bot.providers.mysql_dsn import admin_args


def test_tls_options_become_pymysql_arguments(tmp_path: Path) -> None:
    """ssl_ca / ssl_cert / ssl_key / ssl_verify_* are passed as PyMySQL names them."""
    args = admin_args(
        "mysql://admin:pw@db.internal:3307/billing?ssl_ca=/etc/ca.pem&ssl_cert=/c.pem"
        "&ssl_key=/k.pem&ssl_verify_cert=true&ssl_verify_identity=false",
        connect_timeout_s=5,
    )
    assert (args["host"], args["port"], args["user"], args["database"]) == (
        "db.internal",
        3307,
        "admin",
        "billing",
    )
    assert (args["ssl_ca"], args["ssl_cert"], args["ssl_key"]) == (
        "/etc/ca.pem",
        "/c.pem",
        "/k.pem",
    )
    assert args["ssl_verify_cert"] is True and args["ssl_verify_identity"] is False
    system_cas = admin_args("mysql://admin:pw@db/billing?ssl=true", connect_timeout_s=5)
    assert isinstance(system_cas["ssl"], ssl.SSLContext)
    plain = admin_args("mysql://admin:pw@db/billing", connect_timeout_s=5)
    assert not any(k.startswith("ssl") for k in plain)


def test_the_server_public_key_file_is_read_for_caching_sha2(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "server.pem").write_bytes(pem)
    args = admin_args(
        f"mysql://admin:pw@db/billing?server_public_key={tmp_path / 'server.pem'}",
        connect_timeout_s=5,
    )
    assert args["server_public_key"] == pem
    # What PyMySQL does with it for caching_sha2_password over plain TCP (its rsa extra):
    # the password XOR the scramble, RSA-OAEP encrypted; the server can decrypt it.
    salt = b"0123456789abcdefghij"
    sealed = pymysql._auth.sha2_rsa_encrypt(b"s3cret", salt, pem)
    # MySQL specifies OAEP with SHA-1 for this step; the test mirrors the server.
    opened = key.decrypt(sealed, padding.OAEP(padding.MGF1(SHA1()), SHA1(), None))  # noqa: S303
    assert bytes(a ^ b for a, b in zip(opened, salt * 2, strict=False)) == b"s3cret\0"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("sslca=/etc/ca.pem", "unknown option 'sslca'"),
        ("ssl_verify_cert=maybe", "ssl_verify_cert must be true or false"),
        ("ssl_ca=", "ssl_ca needs a file path"),
    ],
)
def test_a_bad_dsn_option_is_refused_by_name(query: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        MySQLSettings.model_validate({"dsn": f"mysql://admin:pw@db/billing?{query}"})


def test_the_provider_takes_a_tls_dsn() -> None:
    provider = MySQLProvider(
        MySQLSettings.model_validate(
            {"dsn": "mysql://admin:pw@db.internal/billing?ssl_ca=/etc/ca.pem"}
        )
    )
    assert provider.host == "db.internal" and provider.dbname == "billing"
