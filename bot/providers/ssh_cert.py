"""SSH certificates: the requester's public key signed by the policy's CA (``ssh-keygen -s``).

The certificate is valid from one clock-skew allowance before issue until the grant's expiry
(``-V`` with explicit UTC timestamps), so it stops working at ``expires_at`` on every host even
if the bot is dead: expiry needs no action, and a revoke after expiry is a no-op success.
Revoking early adds the certificate's serial to the KRL (``ssh-keygen -k -u``), which the
operator distributes to hosts as sshd's ``RevokedKeys`` (hosts trust the CA through
``TrustedUserCAKeys``). The private key never exists at the bot; the CA key must be readable
by the bot and have no passphrase.

Names: key id ``"<grant id> <user>"`` (shows up in sshd's logs), serial derived from the grant
id (:func:`bot.providers.naming.cert_serial`), so revoke needs nothing but the grant id. Issued
certificates are recorded in a ledger next to the KRL (:mod:`bot.providers.ssh_ledger`) for
``check`` and ``live_grant_ids``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, ClassVar, Final, Literal

from pydantic import AfterValidator, Field

from bot.domain.credentials import Credential, CredentialField
from bot.domain.ssh_keys import SSH_CERT_PROVIDER_TYPE
from bot.errors import ProviderError, TargetUnavailable
from bot.providers.base import GrantContext, ProviderSettings, ensure_not_expired
from bot.providers.naming import cert_serial, check_grant_id
from bot.providers.ssh_ledger import IssuedCert, Ledger, file_lock
from bot.providers.sshkeygen import SshKeygen, normalize_public_key
from bot.providers.validation import parse_role_settings

log = logging.getLogger(__name__)

#: Certificates start this long before issue (hosts' clocks may lag ours), and a revoke
#: within this long after expiry still updates the KRL (hosts' clocks may lag ours).
CLOCK_SKEW_S: Final = 60
LEDGER_SUFFIX: Final = ".issued.jsonl"
#: Unix user names and the like; no commas (ssh-keygen -n separates principals with them).
_PRINCIPAL_RE: Final = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._@-]{0,63}$")
Extension = Literal[
    "permit-pty",
    "permit-port-forwarding",
    "permit-agent-forwarding",
    "permit-X11-forwarding",
    "permit-user-rc",
]


class SSHCertSettings(ProviderSettings):
    """Resource-level settings: the CA key, the KRL and (optionally) where the ledger goes."""

    type: Literal["ssh_cert"] = "ssh_cert"
    ca_key_file: str = Field(min_length=1)
    krl_file: str = Field(min_length=1)
    #: Default: ``<krl_file>.issued.jsonl``.
    ledger_file: str | None = None
    ssh_keygen: str = "ssh-keygen"
    timeout_s: float = Field(default=10.0, gt=0)


def _check_principal(name: str) -> str:
    if not _PRINCIPAL_RE.match(name):
        raise ValueError(f"{name!r} is not a principal name ([A-Za-z0-9._@-], no commas)")
    return name


Principal = Annotated[str, AfterValidator(_check_principal)]


def _default_extensions() -> list[Extension]:
    return ["permit-pty"]


class SSHCertRoleSettings(ProviderSettings):
    """Role-level settings: the principals (login names) and the certificate's extensions.

    Extensions default to ``permit-pty`` only: forwarding is opt-in per role.
    """

    principals: list[Principal] = Field(min_length=1)
    extensions: list[Extension] = Field(default_factory=_default_extensions)


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(int(epoch_s), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class SSHCertProvider:
    """Certificates signed by one CA; see the module docstring for the full contract."""

    type: ClassVar[str] = SSH_CERT_PROVIDER_TYPE

    def __init__(
        self, settings: SSHCertSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.krl_file = Path(settings.krl_file)
        self.ledger = Ledger(Path(settings.ledger_file or settings.krl_file + LEDGER_SUFFIX))
        self.keygen = SshKeygen(binary=settings.ssh_keygen, timeout_s=settings.timeout_s)

    def _require_state_dir(self) -> None:
        """The KRL's directory must exist: it is shared storage the operator set up."""
        for path in (self.krl_file, self.ledger.path):
            if not path.parent.is_dir():
                raise TargetUnavailable(f"ssh_cert: directory {path.parent} is not available")

    # -- issue ---------------------------------------------------------------------------

    async def issue(self, ctx: GrantContext, *, now: float) -> Credential:
        ensure_not_expired(ctx, now=now)
        check_grant_id(ctx.grant_id)
        role = parse_role_settings(SSHCertRoleSettings, ctx)
        if not ctx.ssh_public_key:
            raise ProviderError("ssh_cert: no SSH public key was given for this grant")
        public_key = normalize_public_key(ctx.ssh_public_key)
        serial = cert_serial(ctx.grant_id)
        key_id = f"{ctx.grant_id} {ctx.user}"
        valid_from = now - CLOCK_SKEW_S
        certificate = await asyncio.to_thread(
            self._issue_sync, ctx, role, public_key, serial, key_id, valid_from, now
        )
        log.info(
            "ssh_cert: issued certificate serial %d for grant %s (principals %s)",
            serial,
            ctx.grant_id,
            ",".join(role.principals),
        )
        return Credential(
            ref=str(serial),
            expires_at=ctx.expires_at,
            fields=(
                CredentialField("certificate", certificate),
                CredentialField("principals", ", ".join(role.principals)),
                CredentialField("serial", str(serial)),
                CredentialField("key id", key_id),
                CredentialField("valid", f"{_iso(valid_from)} to {_iso(ctx.expires_at)}"),
                CredentialField(
                    "usage",
                    "save the certificate as <your key>-cert.pub (or pass "
                    "-o CertificateFile=<file>) and ssh as one of the principals",
                ),
            ),
        )

    def _issue_sync(
        self,
        ctx: GrantContext,
        role: SSHCertRoleSettings,
        public_key: str,
        serial: int,
        key_id: str,
        valid_from: float,
        now: float,
    ) -> str:
        self._require_state_dir()
        certificate = self.keygen.sign(
            ca_key_file=self.settings.ca_key_file,
            public_key=public_key,
            key_id=key_id,
            principals=role.principals,
            serial=serial,
            valid_from=valid_from,
            valid_to=ctx.expires_at,
            extensions=role.extensions,
        )
        with file_lock(self.ledger.lock_path):
            self.keygen.ensure_krl(self.krl_file)
            entry = IssuedCert(ctx.grant_id, serial, int(ctx.expires_at), certificate)
            self.ledger.add(entry, now=now)
        return certificate

    # -- revoke --------------------------------------------------------------------------

    async def revoke(self, ctx: GrantContext) -> None:
        revoked = await asyncio.to_thread(self._revoke_sync, ctx, self.clock())
        if revoked:
            log.info(
                "ssh_cert: serial %d of grant %s added to the KRL",
                cert_serial(ctx.grant_id),
                ctx.grant_id,
            )
        else:
            log.info("ssh_cert: grant %s has expired; nothing to revoke", ctx.grant_id)

    def _revoke_sync(self, ctx: GrantContext, now: float) -> bool:
        serial = cert_serial(ctx.grant_id)
        self._require_state_dir()
        with file_lock(self.ledger.lock_path):
            # A re-issue (extension) may have outlived ctx.expires_at: the latest end counts.
            ends = [ctx.expires_at, *(e.valid_before for e in self.ledger.for_grant(ctx.grant_id))]
            if now > max(ends) + CLOCK_SKEW_S:
                return False
            ca_public_key = self.keygen.ca_public_key(self.settings.ca_key_file)
            # Adding a serial already in the KRL leaves it as it was: a second revoke is fine.
            self.keygen.revoke_serial(self.krl_file, ca_public_key=ca_public_key, serial=serial)
        return True

    # -- reading back --------------------------------------------------------------------

    async def check(self, ctx: GrantContext) -> bool:
        """True when a certificate recorded for this grant is unexpired and not in the KRL."""
        return await asyncio.to_thread(self._check_sync, ctx.grant_id, self.clock())

    def _check_sync(self, grant_id: str, now: float) -> bool:
        live = [e for e in self.ledger.for_grant(grant_id) if e.valid_before > now]
        if not live:
            return False
        verdicts = self._revoked([e.certificate for e in live])
        return not all(verdicts)

    async def live_grant_ids(self) -> set[str]:
        """Grant ids with a recorded certificate that is unexpired and not revoked."""
        return await asyncio.to_thread(self._live_sync, self.clock())

    def _live_sync(self, now: float) -> set[str]:
        live = [e for e in self.ledger.entries() if e.valid_before > now]
        verdicts = self._revoked([e.certificate for e in live])
        return {e.grant_id for e, revoked in zip(live, verdicts, strict=True) if not revoked}

    def _revoked(self, certificates: list[str]) -> list[bool]:
        if not self.krl_file.exists():
            return [False] * len(certificates)
        return self.keygen.revoked(self.krl_file, certificates)

    async def health(self) -> None:
        def probe() -> None:
            self._require_state_dir()
            try:
                self.keygen.ca_public_key(self.settings.ca_key_file)
            except ProviderError as e:
                raise TargetUnavailable(str(e)) from e

        await asyncio.to_thread(probe)

    async def aclose(self) -> None:
        """Nothing to release."""
