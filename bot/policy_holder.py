"""The policy a running bot uses, and its safe reload.

Policy changes only through the file. A reload (SIGHUP, or the file changing on disk) takes
effect only when the new file passes the full check; the version change is audited. A bad
file is logged with its errors and the old policy stays in force.

A file that removes a resource or role which live grants still use is refused the same way:
revoking a grant needs its rule (the provider and its settings), so such a change would
leave those grants unrevocable. End them first (``grantbot grants revoke``), or wait until
they expire, then remove the role.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from bot.aio import cancel_and_wait
from bot.domain.policy.rules import LoadedPolicy
from bot.errors import GrantbotError, PolicyError
from bot.policy_loader import load_policy
from bot.store.audit import AuditLog

log = logging.getLogger(__name__)

POLICY_RELOADED: Final = "POLICY_RELOADED"
POLICY_REJECTED: Final = "POLICY_REJECTED"
#: A process started with this policy (serve); with POLICY_RELOADED, the report's record
#: of which policy versions were in force when.
POLICY_LOADED: Final = "POLICY_LOADED"
FILE_POLL_INTERVAL_S: Final = 2.0

ClockFn = Callable[[], float]
#: What live grants use now: {(resource, role): [grant ids]}.
InUseFn = Callable[[], Awaitable[dict[tuple[str, str], list[str]]]]


class PolicyHolder:
    """Holds the current :class:`LoadedPolicy`; ``current`` is always a validated policy."""

    def __init__(
        self, loaded: LoadedPolicy, *, path: str | os.PathLike[str], in_use: InUseFn | None = None
    ) -> None:
        self.current = loaded
        self.path = Path(path)
        self._stamp = self._file_stamp()
        self._watch: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[bool]] = set()
        #: What live grants use (the running bot's store), checked before a reload applies.
        self.in_use = in_use

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, in_use: InUseFn | None = None) -> PolicyHolder:
        """Load and check ``path``; raises PolicyError (every issue) when it is invalid. With
        ``in_use``, a reload that would orphan live grants is refused."""
        return cls(load_policy(path), path=path, in_use=in_use)

    @property
    def version(self) -> str:
        return self.current.version

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    async def reload(self, *, audit: AuditLog | None, now: float, actor: str = "grantbot") -> bool:
        """Try the file again. True when a new version took effect.

        An unchanged version does nothing. An invalid file keeps the old policy, logs every
        issue, and audits the rejection (without the file's contents).
        """
        self._stamp = self._file_stamp()
        try:
            fresh = await asyncio.to_thread(load_policy, self.path)
            if fresh.version != self.current.version:
                errors = await self._still_used(fresh)
            else:
                errors = []
        except PolicyError as e:
            errors = [str(i) for i in e.issues]
        if errors:
            log.error(
                "policy reload rejected; keeping version %s: %s",
                self.current.version[:12],
                "; ".join(errors),
            )
            if audit is not None:
                await audit.append(
                    POLICY_REJECTED,
                    actor=actor,
                    at=now,
                    policy_version=self.current.version,
                    details={"errors": errors[:20], "path": str(self.path)},
                )
            return False
        if fresh.version == self.current.version:
            return False
        previous = self.current
        self.current = fresh
        log.info("policy reloaded: %s -> %s", previous.version[:12], fresh.version[:12])
        if audit is not None:
            await audit.append(
                POLICY_RELOADED,
                actor=actor,
                at=now,
                policy_version=fresh.version,
                details={"from": previous.version, "path": str(self.path)},
            )
        return True

    async def _still_used(self, fresh: LoadedPolicy) -> list[str]:
        """One error per resource/role that ``fresh`` removes while live grants use it."""
        if self.in_use is None:
            return []
        errors = []
        for (resource, role), ids in sorted((await self.in_use()).items()):
            if not fresh.policy.has_rule(resource, role):
                shown = ", ".join(sorted(ids)[:5]) + (", ..." if len(ids) > 5 else "")
                errors.append(
                    f"{self.path.name}: removes {resource} {role}, which {len(ids)} live "
                    f"grant(s) still use ({shown}); end them first or keep it until they expire"
                )
        return errors

    def changed_on_disk(self) -> bool:
        return self._file_stamp() != self._stamp

    def install_reload_triggers(self, *, audit: AuditLog, clock: ClockFn) -> None:
        """Reload on SIGHUP and when the file changes (polled; works on ConfigMap mounts)."""
        loop = asyncio.get_running_loop()

        def on_hup() -> None:
            task = loop.create_task(self.reload(audit=audit, now=clock(), actor="SIGHUP"))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, on_hup)

        async def watch() -> None:
            while True:
                await asyncio.sleep(FILE_POLL_INTERVAL_S)
                if self.changed_on_disk():
                    try:
                        await self.reload(audit=audit, now=clock(), actor="file-change")
                    except Exception:  # a failed reload must not stop the watcher
                        log.exception("policy reload failed")

        self._watch = loop.create_task(watch(), name="policy-watch")

    async def aclose(self) -> None:
        if self._watch is not None:
            await cancel_and_wait(self._watch)


async def audit_policy_loaded(
    audit: AuditLog, holder: PolicyHolder, *, now: float, actor: str = "grantbot"
) -> None:
    """Audit the policy a starting process loaded (one entry per replica start). A failure
    is logged, not raised: Redis being down at start is reported by readiness."""
    try:
        await audit.append(
            POLICY_LOADED,
            actor=actor,
            at=now,
            policy_version=holder.version,
            details={"path": str(holder.path), "host": socket.gethostname()},
        )
    except GrantbotError as e:
        log.warning("could not audit the policy loaded at start: %s", e)
