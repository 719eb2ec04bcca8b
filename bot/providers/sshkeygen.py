"""The real ``ssh-keygen``: signing user keys and maintaining a KRL (key revocation list).

Blocking functions, meant to be run in a worker thread. Each raises ProviderError with
ssh-keygen's own message on failure; a KRL written here is replaced atomically (written to a
temporary file in the same directory, then renamed), so sshd or a distribution job never reads
a half-written file.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from bot.domain import ssh_keys
from bot.errors import ProviderError

#: User key types a certificate may be issued for (certificates themselves are refused): the
#: types a requester may register, and one ssh-keygen signs that registration does not offer
#: (its body layout is not checked there).
KEY_TYPES: Final = frozenset({*ssh_keys.KEY_TYPES, "sk-ecdsa-sha2-nistp256@openssh.com"})
_PUBLIC_KEY_RE: Final = re.compile(
    r"^(?P<type>[a-z0-9@.-]+) (?P<blob>[A-Za-z0-9+/]+={0,3})(?: .*)?$"
)


def normalize_public_key(text: str) -> str:
    """``"<type> <base64>"`` of one OpenSSH public key line (comment dropped).

    Checks the declared type against the type inside the key blob. Never echoes the input:
    a requester who pastes a private key by mistake must not see it quoted back.
    """
    line = text.strip()
    # Broader than ssh_keys.contains_private_key, which must pass a reason that mentions
    # "the PRIVATE KEY": this text is about to be written to a file for ssh-keygen.
    if "PRIVATE KEY" in line:
        raise ProviderError("that is a PRIVATE key; send the public key (the .pub file) instead")
    m = _PUBLIC_KEY_RE.match(line) if "\n" not in line else None
    if not m:
        raise ProviderError("not an OpenSSH public key line ('<type> <base64> [comment]')")
    key_type = m["type"]
    if key_type not in KEY_TYPES:
        raise ProviderError(
            f"key type {key_type!r} cannot be certified; use one of {', '.join(sorted(KEY_TYPES))}"
        )
    try:
        inner_type = ssh_keys.key_type_in_body(m["blob"])
    except ValueError as e:  # binascii.Error and UnicodeDecodeError among them
        raise ProviderError("the public key's base64 data is corrupt") from e
    if inner_type != key_type:
        raise ProviderError("the public key's data does not match its declared type")
    return f"{key_type} {m['blob']}"


def utc_stamp(epoch_s: float) -> str:
    """``YYYYMMDDHHMMSSZ``: ssh-keygen -V reads the trailing Z as UTC (OpenSSH >= 8.8)."""
    return datetime.fromtimestamp(int(epoch_s), tz=UTC).strftime("%Y%m%d%H%M%SZ")


class SshKeygen:
    """One ssh-keygen binary with a timeout per run."""

    def __init__(self, *, binary: str = "ssh-keygen", timeout_s: float = 10.0) -> None:
        self.binary = binary
        self.timeout_s = timeout_s

    def run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run ssh-keygen; a missing binary or a timeout is a ProviderError."""
        try:
            return subprocess.run(  # noqa: S603 - fixed binary, argument list, no shell
                [self.binary, *args],
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
                env={**os.environ, "TZ": "UTC"},
            )
        except FileNotFoundError as e:
            raise ProviderError(f"ssh_cert: {self.binary} is not installed") from e
        except subprocess.TimeoutExpired as e:
            raise ProviderError(f"ssh_cert: ssh-keygen took longer than {self.timeout_s}s") from e

    def checked(self, args: Sequence[str], *, action: str) -> subprocess.CompletedProcess[str]:
        done = self.run(args)
        if done.returncode != 0:
            raise ProviderError(f"ssh_cert: {action} failed: {done.stderr.strip()[:300]}")
        return done

    def sign(
        self,
        *,
        ca_key_file: str,
        public_key: str,
        key_id: str,
        principals: Sequence[str],
        serial: int,
        valid_from: float,
        valid_to: float,
        extensions: Sequence[str],
    ) -> str:
        """Certificate text for ``public_key`` signed by the CA (``ssh-keygen -s``)."""
        with tempfile.TemporaryDirectory(prefix="grantbot-ssh-") as tmp:
            pub = Path(tmp) / "user.pub"
            pub.write_text(public_key + "\n")
            options = ["-O", "clear"]
            for ext in extensions:
                options += ["-O", ext]
            self.checked(
                [
                    "-q",
                    "-s", ca_key_file,
                    "-I", key_id,
                    "-n", ",".join(principals),
                    "-z", str(serial),
                    "-V", f"{utc_stamp(valid_from)}:{utc_stamp(valid_to)}",
                    *options,
                    str(pub),
                ],
                action="signing the key",
            )  # fmt: skip
            return (Path(tmp) / "user-cert.pub").read_text().strip()

    def ca_public_key(self, ca_key_file: str) -> str:
        """The CA's public key, derived from its private key (``ssh-keygen -y``)."""
        return self.checked(["-y", "-f", ca_key_file], action="reading the CA key").stdout.strip()

    def ensure_krl(self, krl_file: Path) -> None:
        """Create an empty KRL if there is none (sshd refuses every key if RevokedKeys is
        missing, so hosts can be configured before the first revocation)."""
        if krl_file.exists():
            return
        self._replace_krl(krl_file, ["-k"], action="creating the KRL")

    def revoke_serial(self, krl_file: Path, *, ca_public_key: str, serial: int) -> None:
        """Add ``serial`` (of certificates by that CA) to the KRL, creating it if needed."""
        with tempfile.TemporaryDirectory(prefix="grantbot-krl-") as tmp:
            ca_pub = Path(tmp) / "ca.pub"
            ca_pub.write_text(ca_public_key + "\n")
            spec = Path(tmp) / "revoke.spec"
            spec.write_text(f"serial: {serial}\n")
            update = ["-u"] if krl_file.exists() else []
            self._replace_krl(
                krl_file, ["-k", *update, "-s", str(ca_pub)], str(spec), action="updating the KRL"
            )

    def _replace_krl(self, krl_file: Path, args: Sequence[str], *tail: str, action: str) -> None:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{krl_file.name}.", dir=krl_file.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if krl_file.exists():
                tmp.write_bytes(krl_file.read_bytes())
            else:
                tmp.unlink()  # ssh-keygen -k without -u creates the file
            self.checked([*args, "-f", str(tmp), *tail], action=action)
            tmp.chmod(0o644)  # hosts read it; it holds nothing secret
            os.replace(tmp, krl_file)
        finally:
            tmp.unlink(missing_ok=True)

    def revoked(self, krl_file: Path, certificates: Sequence[str]) -> list[bool]:
        """For each certificate text, whether the KRL revokes it (``ssh-keygen -Q``)."""
        if not certificates:
            return []
        with tempfile.TemporaryDirectory(prefix="grantbot-krlq-") as tmp:
            paths: list[str] = []
            for i, cert in enumerate(certificates):
                cert_file = Path(tmp) / f"{i}-cert.pub"
                cert_file.write_text(cert + "\n")
                paths.append(str(cert_file))
            done = self.run(["-Q", "-f", str(krl_file), *paths])
            # Exit 0: none revoked, 1: some revoked; anything else is an error.
            if done.returncode not in (0, 1):
                raise ProviderError(f"ssh_cert: querying the KRL failed: {done.stderr.strip()}")
            verdicts: dict[str, bool] = {}
            for line in done.stdout.splitlines():
                for path in paths:
                    if line.startswith(path + " ") or line.startswith(path + ":"):
                        verdicts[path] = line.rstrip().endswith("REVOKED")
            missing = [p for p in paths if p not in verdicts]
            if missing:
                raise ProviderError("ssh_cert: ssh-keygen -Q gave no verdict for a certificate")
            return [verdicts[p] for p in paths]
