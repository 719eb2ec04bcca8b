"""The service's :class:`~bot.notify.Notifier` for Slack: approval messages out, every copy
kept current, the requester told by DM.

Contracts:

- Every message about a grant that may need changing later is remembered (its message refs,
  :class:`~bot.ports.MessageRefStore`: (channel, ts) -> kind), so after a decision *every*
  copy, in every approver's DM and in the approval channel, is ``chat.update``-d, always
  re-rendered from the grant as stored now, one grant at a time in this process, so
  notifications that race each other still leave each copy showing the latest state.
- The credential goes to the requester's DM and nowhere else; no other message, log line or
  audit entry carries a secret. When the grant ends, that DM is rewritten without the secret.
- Slack failures are retried by the client's retry handlers (429 Retry-After, 5xx,
  connection errors). What still fails, in whatever shape (bot.slack.api), is logged and
  audited as ``NOTIFY_FAILED`` with its code and never raised: grant state is never touched
  here.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Final

from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.domain.model import LIVE, Grant, Status
from bot.domain.policy.rules import RoleRule
from bot.errors import GrantbotError, SlackError
from bot.logs import register_secret
from bot.policy_holder import PolicyHolder
from bot.ports import AuditAppender, GrantReader, MessageRef, MessageRefStore, UsergroupDirectory
from bot.service import usergroups_of
from bot.slack import delivery
from bot.slack.blocks import kit, messages
from bot.slack.delivery import Undelivered

if TYPE_CHECKING:
    from bot.domain.credentials import Credential

log = logging.getLogger(__name__)

NOTIFY_FAILED: Final = "NOTIFY_FAILED"
#: Kinds of remembered messages.
APPROVER_COPY: Final = "approver"
CREDENTIAL_DM: Final = "credential"
CLOSED_DM: Final = "closed"  # a credential DM already rewritten without its secret
#: The message in an incident channel that a request's later news is threaded under (for a
#: request asked there without a thread, e.g. by /access).
ORIGIN_ROOT: Final = "origin"
#: At most this many approvers are DMed individually per request; a big user group is
#: better served by the approval channel than by a DM storm.
MAX_APPROVER_DMS: Final = 25
#: After the approval that approves a grant, its copies wait up to this long for the
#: credential, so one update shows the outcome, not "approved" then "active" 0.1 s later
#: (bench/slack_e2e.py: 50 clicks made 300 chat.update calls the credential DMs waited behind).
APPROVED_GRACE_S: Final = 0.5


class SlackNotifier:
    """Posts and updates grantbot's Slack messages. Never raises into the service.

    ``grants`` reads a grant as stored now, ``refs`` keeps the message refs, ``audit`` records
    what could not be delivered; ``directory`` resolves user groups (usergroups.users.list,
    cached); ``clock`` gives epoch seconds. Keyword options: ``max_approver_dms``.
    """

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        grants: GrantReader,
        refs: MessageRefStore,
        audit: AuditAppender,
        policy: PolicyHolder,
        directory: UsergroupDirectory,
        clock: Callable[[], float] = time.time,
        max_approver_dms: int = MAX_APPROVER_DMS,
        approved_grace_s: float = APPROVED_GRACE_S,
    ) -> None:
        self.client = client
        self.grants = grants
        self.refs = refs
        self.audit = audit
        self.policy = policy
        self.directory = directory
        self.clock = clock
        self.max_approver_dms = max_approver_dms
        self.approved_grace_s = approved_grace_s
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        #: Grants whose refresh waits for a newer one (see :meth:`_refresh_soon`).
        self._deferred: dict[str, asyncio.Event] = {}

    # -- Notifier -------------------------------------------------------------------------

    async def request_created(self, grant: Grant) -> None:
        """Post the approval request to each approver by DM and to the approval channel."""
        await self._post_to_approvers(grant)

    async def _post_to_approvers(self, grant: Grant) -> None:
        """The approvers' copies of ``grant`` as it is now (Approve/Deny while PENDING; the
        outcome, with Revoke now once ACTIVE, after an auto-approval)."""
        try:
            rule = self.policy.current.policy.rule(grant.resource, grant.role)
        except GrantbotError as e:
            await self._report(grant.id, "approvers", str(e))
            return
        members = await self._usergroups(rule)
        approvers = rule.members_of(rule.approvers, today=self._today(), usergroups=members)
        targets = [
            u for u in sorted(approvers) if u not in grant.askers or grant.allow_self_approval
        ]
        if len(targets) > self.max_approver_dms:
            log.info(
                "%s: %d approvers; DMing the first %d",
                grant.id,
                len(targets),
                self.max_approver_dms,
            )
            targets = targets[: self.max_approver_dms]
        channels = [*targets]
        if rule.approvers is not None and rule.approvers.channel:
            channels.append(rule.approvers.channel)
        if not channels:
            await self._report(grant.id, "approvers", "the policy names nobody to ask")
            return
        message = messages.approver_copy(grant, now=self.clock())
        posted = await asyncio.gather(*(self._post(grant.id, c, message) for c in channels))
        await self._remember_all(
            grant.id, {ref: APPROVER_COPY for ref in posted if ref is not None}
        )
        # A decision may have landed while we were posting: bring every copy up to date.
        try:
            fresh = await self.grants.get(grant.id)
        except GrantbotError:
            return
        if fresh.version != grant.version:
            await self.refresh(grant.id)

    async def approval_recorded(self, grant: Grant) -> None:
        await self.refresh(grant.id)

    async def decided(self, grant: Grant) -> None:
        """Update the copies; a denial goes to the requester and the origin thread; an
        auto-approval goes to the approvers for review, showing the grant as it is (the
        service tells of an auto-approved access request once issued: Revoke now on it)."""
        if grant.auto_approved and grant.status is not Status.DENIED:
            await self._post_to_approvers(grant)
            return
        if grant.status is Status.APPROVED and grant.kind != "extension":
            await self._refresh_soon(grant.id)  # the credential (or its failure) follows
            return
        await self.refresh(grant.id)
        if grant.status is Status.DENIED:
            await self._tell_requester(grant)
            await self._tell_origin_thread(grant)
        # APPROVED: the credential DM (or the failure notice) follows from the service.

    async def escalated(
        self, grant: Grant, *, tier: int, users: Iterable[str], channel: str | None
    ) -> None:
        """A request reached escalation tier ``tier``: its approvers (and on-call people)
        get the approval request too, remembered so every copy is kept current."""
        targets = [u for u in users][: self.max_approver_dms]
        if channel:
            targets.append(channel)
        if not targets:
            await self._report(grant.id, "escalation", f"tier {tier} names nobody to ask")
            return
        try:
            fresh = await self.grants.get(grant.id)
        except GrantbotError as e:
            log.warning("cannot escalate %s: %s", grant.id, e)
            return
        if fresh.status is not Status.PENDING:
            return  # decided meanwhile: nobody new to ask
        message = messages.approver_copy(fresh, now=self.clock())
        posted = await asyncio.gather(*(self._post(grant.id, c, message) for c in targets))
        await self._remember_all(
            grant.id, {ref: APPROVER_COPY for ref in posted if ref is not None}
        )
        if (await self.grants.get(grant.id)).version != fresh.version:
            await self.refresh(grant.id)

    async def credential_issued(self, grant: Grant, credential: Credential) -> None:
        """The credential to the requester's DM only, first (Slack calls are slow: nothing
        else is awaited before it); then, at once, earlier credential DMs lose their secret,
        the approvers' copies are updated and the origin thread hears of it."""
        for secret in credential.secret_values():
            register_secret(secret)  # second line of defence: masked if it ever reached a log
        earlier = await self._credential_dms(grant)  # read before the new DM is remembered
        message = messages.credential_dm(grant, credential, now=self.clock())
        await self._post(grant.id, grant.requester, message, kind=CREDENTIAL_DM)
        await asyncio.gather(
            self._close_credential_dms(grant, earlier),
            self.refresh(grant.id),
            self._tell_origin_thread(grant),
        )

    async def issue_failed(self, grant: Grant) -> None:
        await self.refresh(grant.id)
        await self._tell_requester(grant)
        await self._tell_origin_thread(grant)

    async def ended(self, grant: Grant) -> None:
        await self.refresh(grant.id)
        applied_extension = grant.kind == "extension" and grant.status is Status.EXPIRED
        if not applied_extension and grant.ended_by != grant.requester:
            await self._tell_requester(grant)
        if not applied_extension:
            await self._tell_origin_thread(grant)

    async def revoke_failed(self, grant: Grant) -> None:
        log.warning("%s: revocation failed (%s); approvers' copies updated", grant.id, "retrying")
        await self.refresh(grant.id)

    async def extended(self, grant: Grant) -> None:
        await self.refresh(grant.id)
        if grant.client is None:
            await self._dm(
                grant.id, grant.requester, messages.extended_notice(grant, now=self.clock())
            )

    async def bundle_filed(self, bundle_id: str) -> None:
        """Bundles are :class:`~bot.slack.bundle_notifier.BundleNotifier`'s; here each item
        was asked for on its own (request_created)."""

    # -- keeping copies current ----------------------------------------------------------

    async def _refresh_soon(self, grant_id: str) -> None:
        """Refresh ``grant_id``'s messages within :attr:`approved_grace_s`: at once if
        another refresh of it is asked for meanwhile (that one renders the state stored by
        then), else at the end of the grace. Returns once one of the two has begun."""
        wanted = self._deferred.setdefault(grant_id, asyncio.Event())
        try:
            async with asyncio.timeout(self.approved_grace_s):
                await wanted.wait()
                return
        except TimeoutError:
            pass
        finally:
            if self._deferred.get(grant_id) is wanted:
                del self._deferred[grant_id]
        await self.refresh(grant_id)

    async def refresh(self, grant_id: str) -> None:
        """Re-render every remembered message of ``grant_id`` from its stored state."""
        deferred = self._deferred.pop(grant_id, None)
        if deferred is not None:
            deferred.set()  # this refresh stands for the deferred one too
        lock = self._locks.get(grant_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[grant_id] = lock
        async with lock:
            try:
                grant = await self.grants.get(grant_id)
                refs = await self.refs.read(grant_id)
            except GrantbotError as e:
                log.warning("cannot refresh messages of %s: %s", grant_id, e)
                return
            now = self.clock()
            updates = []
            for (channel, ts), kind in refs.items():
                if kind == APPROVER_COPY:
                    updates.append(
                        self._update(grant_id, channel, ts, messages.approver_copy(grant, now=now))
                    )
                elif kind == CREDENTIAL_DM and grant.status not in LIVE:
                    updates.append(
                        self._update(
                            grant_id,
                            channel,
                            ts,
                            messages.credential_ended(grant, now=now),
                            then_kind=CLOSED_DM,
                        )
                    )
            await asyncio.gather(*updates)

    async def _credential_dms(self, grant: Grant) -> list[MessageRef]:
        """(channel, ts) of the credential DMs of ``grant`` that still show a secret."""
        refs = await self._read_refs(grant.id)
        return [ref for ref, kind in refs.items() if kind == CREDENTIAL_DM]

    async def _close_credential_dms(self, grant: Grant, dms: list[MessageRef]) -> None:
        """Once a new credential DM is out (an extension re-issues): the earlier ``dms`` lose
        their secret, which the re-issue may have replaced."""
        message = messages.credential_replaced(grant)
        await asyncio.gather(
            *(
                self._update(grant.id, channel, ts, message, then_kind=CLOSED_DM)
                for channel, ts in dms
            )
        )

    # -- Slack calls ---------------------------------------------------------------------

    async def _post(
        self,
        grant_id: str,
        channel: str,
        message: kit.Message,
        *,
        kind: str | None = None,
        thread_ts: str | None = None,
    ) -> tuple[str, str] | None:
        """chat.postMessage (in ``thread_ts`` if given); remember it under ``kind`` (if
        given). (channel id, ts) or None when Slack refused (reported)."""
        try:
            resp = await self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                **message.as_kwargs(),
            )
        except SlackError as e:
            metrics.record_slack_api_error("chat.postMessage", e)
            await self._report(grant_id, "chat.postMessage", e.code, channel=channel)
            return None
        ref = (str(resp.get("channel") or channel), str(resp.get("ts")))
        if kind is not None:
            await self._remember_all(grant_id, {ref: kind})
        return ref

    async def _update(
        self,
        grant_id: str,
        channel: str,
        ts: str,
        message: kit.Message,
        *,
        then_kind: str | None = None,
    ) -> None:
        try:
            await self.client.chat_update(channel=channel, ts=ts, **message.as_kwargs())
        except SlackError as e:
            if e.code == "message_not_found":  # deleted in Slack: forget it
                await self._forget(grant_id, channel, ts)
                return
            metrics.record_slack_api_error("chat.update", e)
            await self._report(grant_id, "chat.update", e.code, channel=channel)
            return
        if then_kind is not None:
            await self._remember_all(grant_id, {(channel, ts): then_kind})

    async def _dm(self, grant_id: str, user: str, message: kit.Message) -> None:
        await self._post(grant_id, user, message)

    async def _tell_requester(self, grant: Grant) -> None:
        if grant.client is not None:  # a machine client hears through the API (bot.api)
            return
        await self._dm(
            grant.id, grant.requester, messages.requester_notice(grant, now=self.clock())
        )

    async def _tell_origin_thread(self, grant: Grant) -> None:
        """A request made by mention, or from an incident channel, hears its outcome where
        it was asked (never a secret): in its thread, or under the message that announced
        it in the channel; failing both, as a new message that later news threads under."""
        origin = grant.origin
        channel = origin.channel
        if not channel or channel.startswith("D"):
            return
        if origin.surface != "mention" and origin.incident is None:
            return
        thread_ts = origin.thread_ts or await self._origin_root(grant.id)
        message = messages.thread_outcome(grant, now=self.clock())
        await self._post(
            grant.id,
            channel,
            message,
            thread_ts=thread_ts,
            kind=ORIGIN_ROOT if thread_ts is None else None,
        )

    async def _origin_root(self, grant_id: str) -> str | None:
        """The ts of the message announcing ``grant_id`` in its incident channel, if any."""
        refs = await self._read_refs(grant_id)  # none readable: post unthreaded, not never
        return next((ts for (_, ts), kind in refs.items() if kind == ORIGIN_ROOT), None)

    # -- bookkeeping ---------------------------------------------------------------------

    async def _usergroups(self, rule: RoleRule) -> Mapping[str, frozenset[str]]:
        ids: Iterable[str] = usergroups_of(rule)
        try:
            return await self.directory.members(ids) if ids else {}
        except Exception:  # the directory fails closed; never let it stop a notification
            log.exception("resolving user groups failed")
            return {}

    def _today(self) -> date:
        return datetime.fromtimestamp(self.clock(), tz=UTC).date()

    async def remember_origin_root(self, grant_id: str, channel: str, ts: str) -> None:
        """``channel``/``ts`` announced ``grant_id`` where asked: later news threads under it."""
        await self._remember_all(grant_id, {(channel, ts): ORIGIN_ROOT})

    async def _read_refs(self, grant_id: str) -> dict[MessageRef, str]:
        """The message refs of ``grant_id``; none when they cannot be read (logged)."""
        try:
            return await self.refs.read(grant_id)
        except Exception as e:
            log.warning("cannot read messages of %s: %s", grant_id, type(e).__name__)
            return {}

    async def _remember_all(self, grant_id: str, refs: Mapping[MessageRef, str]) -> None:
        """Store message refs (channel, ts) -> kind in one round trip."""
        if not refs:
            return
        try:
            await self.refs.remember(grant_id, refs)
        except Exception as e:  # Redis down: the copies exist but cannot be updated later
            log.warning("could not remember %d message(s) of %s: %s", len(refs), grant_id, e)

    async def _forget(self, grant_id: str, channel: str, ts: str) -> None:
        try:
            await self.refs.forget(grant_id, (channel, ts))
        except Exception as e:
            log.warning("could not forget message %s %s of %s: %s", channel, ts, grant_id, e)

    async def _report(
        self, grant_id: str, method: str, error: str, *, channel: str | None = None
    ) -> None:
        """Log and audit a notification that failed after retries (and tell whoever is
        watching, see bot.slack.delivery); never raise."""
        delivery.record(Undelivered(grant_id, method, channel, error))
        log.warning(
            "notification failed: %s for %s: %s",
            method,
            grant_id,
            error,
            extra={"grant_id": grant_id, "method": method, "channel": channel},
        )
        try:
            await self.audit.append(
                NOTIFY_FAILED,
                actor="slack-notifier",
                at=self.clock(),
                grant_id=grant_id,
                details={"method": method, "error": error, "channel": channel},
            )
        except Exception as e:
            log.warning("could not audit the failed notification of %s: %s", grant_id, e)
