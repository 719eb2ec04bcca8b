"""The Slack notifier, with bundles (issue 13): one approval message for all of a bundle's
items and one DM carrying every credential.

A bundle's items are ordinary grants, decided and issued one by one by the service; this
subclass of :class:`~bot.slack.notifier.SlackNotifier` routes what concerns them:

- Their approval copies are one message (:func:`~bot.slack.blocks.bundles.bundle_approval`),
  posted once every item is filed (:meth:`BundleNotifier.bundle_filed`) to every approver of
  a pending item and each approval channel, remembered under the bundle id and re-rendered
  after every decision: for each item, whose approval it still needs.
- Their credentials go out together once no item is still pending or being issued: one DM,
  sent once across replicas (``claim_delivery``). A credential issued in this process is
  held in memory until then (never in Redis or a log); one issued elsewhere is issued again
  for the DM (providers' issue is idempotent per grant). An item that was denied, lapsed or
  failed to issue is listed with why; the others proceed.
- When one item ends, only its blocks in that DM are replaced (the message is read back from
  Slack, conversations.history), so its secret leaves Slack and the others' stay.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from bot.domain.credentials import Credential
from bot.domain.model import Grant, Status
from bot.errors import GrantbotError, SlackError
from bot.logs import register_secret
from bot.slack.blocks import kit
from bot.slack.blocks.bundles import (
    BundleRow,
    bundle_approval,
    bundle_credentials,
    bundle_name,
    without_item,
)
from bot.slack.notifier import SlackNotifier

log = logging.getLogger(__name__)

#: Kinds of the messages remembered under a bundle id.
BUNDLE_COPY: Final = "bundle"
BUNDLE_DM: Final = "bundle-credentials"
#: At most this many bundles' credentials are held in memory awaiting their DM; past it the
#: oldest are dropped (and issued again when their bundle settles).
MAX_HELD_BUNDLES: Final = 500
_UNSETTLED: Final = frozenset({Status.PENDING, Status.APPROVED})


class BundleRecordLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def requester(self) -> str: ...
    @property
    def item_ids(self) -> tuple[str, ...]: ...
    @property
    def filing(self) -> bool: ...


class BundleBook(Protocol):
    """The store's bundle records (:class:`bot.store.bundles.Bundles`)."""

    def read(self, bundle_id: str) -> Awaitable[BundleRecordLike | None]: ...
    def claim_delivery(self, bundle_id: str) -> Awaitable[bool]: ...


Reissue = Callable[[Grant], Awaitable[Credential | None]]


class BundleNotifier(SlackNotifier):
    """A :class:`SlackNotifier` that also knows bundles (see the module docstring).
    ``bundles`` reads bundle records; ``reissue`` issues a live item's credential again."""

    def __init__(
        self, *, bundles: BundleBook, reissue: Reissue | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self.bundles = bundles
        self.reissue = reissue
        self._held: OrderedDict[str, dict[str, Credential]] = OrderedDict()
        self._bundle_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    # -- the Notifier, for bundle items -------------------------------------------------

    async def request_created(self, grant: Grant) -> None:
        if bundle_name(grant) is None:
            await super().request_created(grant)
        # A bundle's one message is posted once all its items are filed (bundle_filed).

    async def approval_recorded(self, grant: Grant) -> None:
        found = bundle_name(grant)
        if found is None:
            await super().approval_recorded(grant)
            return
        await self.refresh_bundle(found[1])

    async def decided(self, grant: Grant) -> None:
        found = bundle_name(grant)
        if found is None:
            await super().decided(grant)
            return
        await self.refresh_bundle(found[1])
        if grant.status is Status.DENIED:
            await self._tell_origin_thread(grant)
            await self._settle(found[1])

    async def credential_issued(self, grant: Grant, credential: Credential) -> None:
        found = bundle_name(grant)
        if found is None:
            await super().credential_issued(grant, credential)
            return
        for secret in credential.secret_values():
            register_secret(secret)
        self._hold(found[1], grant.id, credential)
        await self.refresh_bundle(found[1])
        await self._settle(found[1])

    async def issue_failed(self, grant: Grant) -> None:
        found = bundle_name(grant)
        if found is None:
            await super().issue_failed(grant)
            return
        await self.refresh_bundle(found[1])
        await self._settle(found[1])

    async def ended(self, grant: Grant) -> None:
        found = bundle_name(grant)
        if found is None:
            await super().ended(grant)
            return
        bundle_id = found[1]
        await self.refresh_bundle(bundle_id)
        await self._tell_origin_thread(grant)
        if grant.status is Status.FAILED or grant.approved_at is None:
            await self._settle(bundle_id)  # it never ran: the others may be waiting on it
        await self._close_item(bundle_id, grant)

    # -- the bundle's messages ------------------------------------------------------------

    async def bundle_filed(self, bundle_id: str) -> None:
        """Every item of ``bundle_id`` is filed: post its one approval message (to every
        approver of an item and each approval channel) and, if nothing waits, its DM."""
        record, items = await self._read_bundle(bundle_id)
        if record is None or not items:
            return
        rows = [await self._row(grant) for grant in items]
        targets: list[str] = []
        for row in rows:
            for user in row.approvers:
                if user not in targets:
                    targets.append(user)
        targets = targets[: self.max_approver_dms]
        targets += sorted({row.channel for row in rows if row.channel})
        if targets:
            message = bundle_approval(record.name, bundle_id, rows, now=self.clock())
            posted = await asyncio.gather(
                *(self._post(bundle_id, channel, message) for channel in targets)
            )
            await self._remember_all(bundle_id, {ref: BUNDLE_COPY for ref in posted if ref})
            await self.refresh_bundle(bundle_id)  # a decision may have landed meanwhile
        await self._settle(bundle_id)

    async def refresh_bundle(self, bundle_id: str) -> None:
        """Re-render every copy of the bundle's approval message from its items now."""
        async with self._lock(bundle_id):
            record, items = await self._read_bundle(bundle_id)
            if record is None or not items:
                return
            refs = await self._read_refs(bundle_id)
            copies = [ref for ref, kind in refs.items() if kind == BUNDLE_COPY]
            if not copies:
                return
            rows = [await self._row(grant) for grant in items]
            message = bundle_approval(record.name, bundle_id, rows, now=self.clock())
            await asyncio.gather(*(self._update(bundle_id, c, ts, message) for c, ts in copies))

    async def _row(self, grant: Grant) -> BundleRow:
        """``grant`` with whoever may still approve it (not those who did, nor its askers
        unless the rule allows self-approval)."""
        try:
            rule = self.policy.current.policy.rule(grant.resource, grant.role)
        except GrantbotError:
            return BundleRow(grant=grant, approvers=())
        if grant.status is not Status.PENDING:
            return BundleRow(grant=grant, approvers=())
        members = await self._usergroups(rule)
        everyone = rule.members_of(rule.approvers, today=self._today(), usergroups=members)
        still = sorted(
            u
            for u in everyone
            if u not in grant.approvers and (u not in grant.askers or grant.allow_self_approval)
        )
        channel = rule.approvers.channel if rule.approvers is not None else None
        return BundleRow(grant=grant, approvers=tuple(still), channel=channel)

    async def _settle(self, bundle_id: str) -> None:
        """Once no item is pending or being issued: the one DM with every credential."""
        record, items = await self._read_bundle(bundle_id)
        if record is None or record.filing or not items:
            return
        if any(grant.status in _UNSETTLED for grant in items):
            return
        try:
            mine = await self.bundles.claim_delivery(bundle_id)
        except GrantbotError as e:
            log.warning("cannot claim the DM of bundle %s: %s", bundle_id, e)
            return
        held = self._held.pop(bundle_id, {})
        if not mine:
            return
        pairs: list[tuple[Grant, Credential | None]] = []
        for grant in items:
            credential = held.get(grant.id)
            if grant.status is Status.ACTIVE and credential is None and self.reissue is not None:
                credential = await self.reissue(grant)
                for secret in credential.secret_values() if credential else ():
                    register_secret(secret)
            pairs.append((grant, credential))
        message = bundle_credentials(record.name, bundle_id, pairs, now=self.clock())
        await self._post(bundle_id, record.requester, message, kind=BUNDLE_DM)
        for grant in items:
            if grant.status is Status.ACTIVE:
                await self._tell_origin_thread(grant)

    async def _close_item(self, bundle_id: str, grant: Grant) -> None:
        """``grant`` ended: its blocks in the bundle's DM (if sent) give way to a line saying
        so; every other item that has ended by now too (a concurrent update elsewhere may
        have been lost)."""
        if grant.status in _UNSETTLED or grant.status is Status.ACTIVE:
            return
        async with self._lock(bundle_id):
            refs = await self._read_refs(bundle_id)
            dms = [ref for ref, kind in refs.items() if kind == BUNDLE_DM]
            if not dms:
                return
            _, items = await self._read_bundle(bundle_id)
            ended = [g for g in items if g.terminal] or [grant]
            for channel, ts in dms:
                blocks = await self._current_blocks(bundle_id, channel, ts)
                if blocks is None:
                    continue
                for item in ended:
                    blocks = without_item(blocks, item, now=self.clock())
                text = f"Your bundle: {len(ended)} of {len(items) or 1} items have ended"
                await self._update(bundle_id, channel, ts, kit.Message(text=text, blocks=blocks))

    async def _current_blocks(
        self, bundle_id: str, channel: str, ts: str
    ) -> list[dict[str, Any]] | None:
        """The blocks of message ``ts`` in ``channel`` as Slack holds them now."""
        try:
            resp = await self.client.conversations_history(
                channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1
            )
        except SlackError as e:
            await self._report(bundle_id, "conversations.history", e.code, channel=channel)
            return None
        found = [m for m in resp.get("messages") or [] if m.get("ts") == ts]
        return list(found[0].get("blocks") or []) if found else None

    # -- bookkeeping ------------------------------------------------------------------------

    async def _read_bundle(self, bundle_id: str) -> tuple[BundleRecordLike | None, list[Grant]]:
        try:
            record = await self.bundles.read(bundle_id)
            if record is None:
                return None, []
            items = [await self.grants.get(i) for i in record.item_ids]
        except GrantbotError as e:
            log.warning("cannot read bundle %s: %s", bundle_id, e)
            return None, []
        return record, items

    def _hold(self, bundle_id: str, grant_id: str, credential: Credential) -> None:
        self._held.setdefault(bundle_id, {})[grant_id] = credential
        self._held.move_to_end(bundle_id)
        while len(self._held) > MAX_HELD_BUNDLES:
            self._held.popitem(last=False)

    def _lock(self, bundle_id: str) -> asyncio.Lock:
        lock = self._bundle_locks.get(bundle_id)
        if lock is None:
            lock = asyncio.Lock()
            self._bundle_locks[bundle_id] = lock
        return lock
