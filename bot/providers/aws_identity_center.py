"""aws_identity_center: an IAM Identity Center permission set on an account, for the grant.

The requester is found in the instance's Identity Store by the email Slack has for them
(``identitystore:GetUserId`` on ``emails.value``); no match refuses the request before anyone
is asked to approve (:meth:`AWSIdentityCenterProvider.precheck`). Issue =
``CreateAccountAssignment`` (user, permission set, account), then wait -- bounded, with
backoff -- until its creation status is SUCCEEDED. Revoke = ``DeleteAccountAssignment`` and
wait for its deletion status; an assignment already gone is success.

An assignment has no name and no tags, and one person holds at most one per permission set
and account, so grantbot keeps its own books in Redis (:mod:`bot.store.provider_state`):
which grants hold each assignment, and whether grantbot created it. Two overlapping grants of
the same user, permission set and account share one assignment, which is deleted only when
the last of them ends. An assignment that existed before grantbot's first grant of it (a
standing assignment an admin made) is never deleted. ``live_grant_ids`` lists only grants
recorded there, so the reconciler never sees, let alone touches, other assignments.

AWS does not end sessions: a portal session opened while the assignment existed lasts until
the permission set's session duration ends, after the assignment is gone. The DM says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from bot.domain.credentials import Credential, CredentialField
from bot.domain.duration import format_duration
from bot.errors import PolicyDenied, ProviderError, TargetUnavailable
from bot.providers.aws_client import AWSClients, is_code
from bot.providers.aws_limits import iso_duration_s
from bot.providers.aws_provider_settings import (
    AWSIdentityCenterRoleSettings,
    AWSIdentityCenterSettings,
)
from bot.providers.base import GrantContext, RequestContext, ensure_not_expired
from bot.providers.naming import check_grant_id
from bot.providers.validation import parse_role_settings, parse_settings
from bot.store.provider_state import FOUND_THERE, ProviderState

log = logging.getLogger(__name__)

KIND: Final = "aws_identity_center"
IN_PROGRESS: Final = "IN_PROGRESS"
SUCCEEDED: Final = "SUCCEEDED"
#: "Another operation on this assignment is in progress": tried again within the wait bound.
CONFLICT: Final = "ConflictException"
#: A revoke waits at most this long (the revoker gives each revocation 30 s; one still in
#: progress is REVOKE_FAILED and retried, and the retry finds the assignment gone).
REVOKE_WAIT_MAX_S: Final = 25.0


def poll_delays(*, initial_s: float, max_s: float, budget_s: float) -> list[float]:
    """The waits between polls of an assignment's status: doubling from ``initial_s`` up to
    ``max_s`` each, as many as fit in ``budget_s`` in total (pure)."""
    delays: list[float] = []
    delay, spent = initial_s, 0.0
    while spent + delay <= budget_s:
        delays.append(delay)
        spent += delay
        delay = min(delay * 2, max_s)
    return delays


def thing_of(account_id: str, permission_set_arn: str, principal_id: str) -> str:
    """The name of one assignment in grantbot's books (its holders, its origin)."""
    return f"{account_id}|{permission_set_arn}|{principal_id}"


class AWSIdentityCenterProvider:
    """One account assignment per user, permission set and account, shared by that user's
    overlapping grants; see the module docstring for the full contract."""

    type: ClassVar[str] = KIND
    needs_email: ClassVar[bool] = True

    def __init__(
        self,
        settings: AWSIdentityCenterSettings,
        *,
        state: ProviderState,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.state = state
        self.sleep = sleep
        self.aws = AWSClients(settings, what=KIND)
        self._store_ids: dict[str, str] = {}

    # -- finding the user --------------------------------------------------------------------

    async def _identity_store_id(self, instance_arn: str) -> str:
        if self.settings.identity_store_id:
            return self.settings.identity_store_id
        found = self._store_ids.get(instance_arn)
        if found is None:
            instances = await self.aws.run(
                lambda a: a.sso_admin().list_instances()["Instances"], action="ListInstances"
            )
            for instance in instances:
                self._store_ids[instance["InstanceArn"]] = instance["IdentityStoreId"]
            found = self._store_ids.get(instance_arn)
        if found is None:
            raise ProviderError(f"{KIND}: no Identity Center instance {instance_arn}")
        return found

    async def _user_id(self, instance_arn: str, email: str) -> str | None:
        """The Identity Store user whose email is ``email``, or None."""
        store = await self._identity_store_id(instance_arn)
        try:
            found = await self.aws.run(
                lambda a: a.identitystore().get_user_id(
                    IdentityStoreId=store,
                    AlternateIdentifier={
                        "UniqueAttribute": {
                            "AttributePath": "emails.value",
                            # A JSON document in the API; a bare string is what AWS matches.
                            "AttributeValue": email,  # type: ignore[typeddict-item]
                        }
                    },
                ),
                action="finding the user by email",
            )
        except ProviderError as e:
            if is_code(e, "ResourceNotFoundException"):
                return None
            raise
        return str(found["UserId"])

    async def precheck(self, request: RequestContext, *, now: float) -> None:
        """Refuse, before anyone is asked, a requester the Identity Store does not know."""
        role = parse_settings(
            AWSIdentityCenterRoleSettings,
            request.role_settings,
            what=f"role {request.role} of {request.resource}",
        )
        where = f"{request.resource} {request.role}"
        if not request.email:
            raise PolicyDenied(
                f"{where}: grantbot cannot read your email address from Slack, and AWS IAM "
                "Identity Center finds you by it; ask a Slack admin to check grantbot's "
                "users:read.email scope"
            )
        if await self._user_id(role.instance_arn, request.email) is None:
            raise PolicyDenied(
                f"{where}: AWS IAM Identity Center has no user with your Slack email "
                f"({request.email}); ask an AWS administrator to add you, then ask again"
            )

    # -- assignments ---------------------------------------------------------------------------

    def _target(self, rec: dict[str, Any]) -> dict[str, str]:
        return {
            "InstanceArn": rec["instance_arn"],
            "TargetId": rec["account_id"],
            "TargetType": "AWS_ACCOUNT",
            "PermissionSetArn": rec["permission_set_arn"],
            "PrincipalType": "USER",
            "PrincipalId": rec["principal_id"],
        }

    async def _exists(self, rec: dict[str, Any]) -> bool:
        return rec["principal_id"] in await self._principals(
            rec["instance_arn"], rec["account_id"], rec["permission_set_arn"]
        )

    async def _principals(self, instance_arn: str, account_id: str, ps_arn: str) -> set[str]:
        """The users assigned ``ps_arn`` on ``account_id`` now."""

        def list_all(a: AWSClients) -> set[str]:
            pages = a.sso_admin().get_paginator("list_account_assignments")
            found: set[str] = set()
            for page in pages.paginate(
                InstanceArn=instance_arn, AccountId=account_id, PermissionSetArn=ps_arn
            ):
                found |= {
                    x["PrincipalId"]
                    for x in page["AccountAssignments"]
                    if x.get("PrincipalType") == "USER"
                }
            return found

        return await self.aws.run(list_all, action="listing account assignments")

    async def _change(self, rec: dict[str, Any], *, create: bool) -> None:
        """Create or delete the assignment and wait until AWS reports it done, polling with
        doubling waits that add up to at most ``wait_timeout_s`` (:data:`REVOKE_WAIT_MAX_S`
        for a delete); deleting one already gone is success. Raises TargetUnavailable when
        still in progress when the waits are spent."""
        verb = "creating" if create else "deleting"
        target = self._target(rec)
        bound_s = self.settings.wait_timeout_s
        if not create:
            bound_s = min(bound_s, REVOKE_WAIT_MAX_S)
        delays = iter(
            poll_delays(
                initial_s=self.settings.poll_initial_s,
                max_s=self.settings.poll_max_s,
                budget_s=bound_s,
            )
        )

        async def pause(why: str) -> None:
            delay = next(delays, None)
            if delay is None:
                raise TargetUnavailable(
                    f"{KIND}: {verb} the assignment: {why} after {format_duration(bound_s)}"
                )
            await self.sleep(delay)

        while True:
            try:
                if create:
                    out = await self.aws.run(
                        lambda a: a.sso_admin().create_account_assignment(**target),  # type: ignore[arg-type]
                        action="CreateAccountAssignment",
                    )
                    status: dict[str, Any] = dict(out["AccountAssignmentCreationStatus"])
                else:
                    gone = await self.aws.run(
                        lambda a: a.sso_admin().delete_account_assignment(**target),  # type: ignore[arg-type]
                        action="DeleteAccountAssignment",
                    )
                    status = dict(gone["AccountAssignmentDeletionStatus"])
            except ProviderError as e:
                if not create and is_code(e, "ResourceNotFoundException"):
                    return  # already gone
                if not is_code(e, CONFLICT):
                    raise
                await pause("another change of it stayed in progress")
                continue
            break
        while status.get("Status") == IN_PROGRESS:
            await pause("still in progress")
            status = await self._status(
                create=create, instance=target["InstanceArn"], request_id=str(status["RequestId"])
            )
        if status.get("Status") != SUCCEEDED:
            reason = status.get("FailureReason") or status.get("Status") or "unknown status"
            raise ProviderError(f"{KIND}: {verb} the assignment failed: {reason}")

    async def _status(self, *, create: bool, instance: str, request_id: str) -> dict[str, Any]:
        """The creation (or deletion) status of request ``request_id``."""
        if create:
            out = await self.aws.run(
                lambda a: a.sso_admin().describe_account_assignment_creation_status(
                    InstanceArn=instance, AccountAssignmentCreationRequestId=request_id
                ),
                action="reading the creation status",
            )
            return dict(out["AccountAssignmentCreationStatus"])
        gone = await self.aws.run(
            lambda a: a.sso_admin().describe_account_assignment_deletion_status(
                InstanceArn=instance, AccountAssignmentDeletionRequestId=request_id
            ),
            action="reading the deletion status",
        )
        return dict(gone["AccountAssignmentDeletionStatus"])

    # -- issue / revoke ----------------------------------------------------------------------

    async def issue(self, ctx: GrantContext, *, now: float) -> Credential:
        ensure_not_expired(ctx, now=now)
        gid = check_grant_id(ctx.grant_id)
        role = parse_role_settings(AWSIdentityCenterRoleSettings, ctx)
        if not ctx.email:
            raise ProviderError(f"{KIND}: the requester's email is unknown; nothing was issued")
        principal = await self._user_id(role.instance_arn, ctx.email)
        if principal is None:
            raise ProviderError(f"{KIND}: no Identity Store user has the requester's email")
        rec = {
            "instance_arn": role.instance_arn,
            "permission_set_arn": role.permission_set_arn,
            "account_id": role.account_id,
            "principal_id": principal,
        }
        thing = thing_of(role.account_id, role.permission_set_arn, principal)
        # Books first: if we die after creating, revoke and the reconciler still know it.
        await self.state.put(gid, rec)
        await self.state.hold(thing, gid)
        exists: bool | None = None
        try:
            exists = await self._exists(rec)
            made_by_grantbot = await self.state.claim_origin(thing, made_by_grantbot=not exists)
            if not exists:
                await self._change(rec, create=True)
        except BaseException:
            await self._undo_issue(ctx, thing, may_have_created=exists is False)
            raise
        log.info(
            "%s: %s assignment for grant %s",
            KIND,
            "created the" if not exists else "grant holds the existing",
            gid,
            extra={"grant_id": gid},
        )
        if exists and not made_by_grantbot:
            log.info("%s: the assignment predates grantbot; it will not remove it", KIND)
        return await self._credential(ctx, role, principal)

    async def _undo_issue(self, ctx: GrantContext, thing: str, *, may_have_created: bool) -> None:
        """After a failed issue: take back what it may have created (a revoke), or else
        only drop its books. Never raises (the issue's own error is what matters)."""
        try:
            if may_have_created:
                await self.revoke(ctx)
            else:
                if await self.state.release(thing, ctx.grant_id) == 0:
                    await self.state.drop_origin(thing)
                await self.state.forget(ctx.grant_id)
        except Exception as e:
            log.warning("%s: could not take back a failed issue of %s: %s", KIND, ctx.grant_id, e)

    async def revoke(self, ctx: GrantContext) -> None:
        """Release the grant's hold; delete the assignment when it was the last holder and
        grantbot made it (and give it back if another grant took it meanwhile)."""
        gid = check_grant_id(ctx.grant_id)
        rec = await self.state.get(gid)
        if rec is None:
            log.info("%s: nothing recorded for %s; nothing to revoke", KIND, gid)
            return
        thing = thing_of(rec["account_id"], rec["permission_set_arn"], rec["principal_id"])
        remaining = await self.state.release(thing, gid)
        if remaining == 0:
            if await self.state.origin(thing) != FOUND_THERE:
                await self._change(rec, create=False)
                if await self.state.holders(thing):
                    # A grant of the same assignment was issued while we deleted it.
                    await self._change(rec, create=True)
            if not await self.state.holders(thing):
                await self.state.drop_origin(thing)
        await self.state.forget(gid)
        log.info(
            "%s: grant %s released its assignment (%d other holder(s))",
            KIND,
            gid,
            remaining,
            extra={"grant_id": gid},
        )

    # -- reading -------------------------------------------------------------------------------

    async def check(self, ctx: GrantContext) -> bool:
        """The grant's assignment exists at AWS (until its revoke has completed, the
        grant's record is kept, so a half-done revoke still reads as access)."""
        rec = await self.state.get(check_grant_id(ctx.grant_id))
        return rec is not None and await self._exists(rec)

    async def live_grant_ids(self) -> set[str]:
        """Grants recorded by grantbot whose assignment exists at AWS (nothing else)."""
        records = await self.state.records()
        by_target: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        for gid, rec in records.items():
            key = (rec["instance_arn"], rec["account_id"], rec["permission_set_arn"])
            by_target.setdefault(key, []).append((gid, rec["principal_id"]))
        live: set[str] = set()
        for (instance, account, ps_arn), grants in by_target.items():
            assigned = await self._principals(instance, account, ps_arn)
            live |= {gid for gid, principal in grants if principal in assigned}
        return live

    async def health(self) -> None:
        await self.aws.run(lambda a: a.sso_admin().list_instances(), action="health check")

    async def aclose(self) -> None:
        self.aws.close()

    async def _credential(
        self, ctx: GrantContext, role: AWSIdentityCenterRoleSettings, principal: str
    ) -> Credential:
        """No secret: the DM says where to sign in and how long a portal session lasts."""
        name, session = role.permission_set_arn.rsplit("/", 1)[-1], role.session_duration
        try:
            ps = await self.aws.run(
                lambda a: a.sso_admin().describe_permission_set(
                    InstanceArn=role.instance_arn, PermissionSetArn=role.permission_set_arn
                )["PermissionSet"],
                action="DescribePermissionSet",
            )
        except ProviderError as e:
            log.info("%s: permission set details unavailable (%s)", KIND, e)
        else:
            name = str(ps.get("Name") or name)
            session = iso_duration_s(str(ps.get("SessionDuration") or "")) or session
        at = datetime.fromtimestamp(ctx.expires_at, tz=UTC)
        lasting = format_duration(session) if session else "its session duration"
        fields = [
            CredentialField("account", role.account_id),
            CredentialField("permission set", name),
        ]
        if self.settings.portal_url:
            fields.append(CredentialField("sign in at", self.settings.portal_url))
        fields.append(
            CredentialField(
                "note",
                f"Sign in to the AWS access portal and choose account {role.account_id}, "
                f"permission set {name}. grantbot removes the assignment at "
                f"{at:%Y-%m-%d %H:%M} UTC. A portal session already open then lasts until "
                f"the permission set's session duration ({lasting}) ends: AWS does not cut "
                "it short.",
            )
        )
        return Credential(
            ref=f"{role.account_id}/{name}/{principal}",
            expires_at=ctx.expires_at,
            fields=tuple(fields),
        )
