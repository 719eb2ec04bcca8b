"""aws_sts: temporary AWS credentials for an IAM role, one STS session per grant.

Issue = ``sts:AssumeRole`` with ``RoleSessionName`` = the grant id, ``SourceIdentity`` = the
requester (their email as Slack has it, else their Slack id: CloudTrail then names the person
in every call made with the session, and the session cannot change it), ``DurationSeconds`` =
the grant's remaining time, and the role settings' session policy / managed policy ARNs to
narrow it. The credentials end by themselves at their expiry (AWS enforces it), so access ends
even if grantbot is dead.

AWS cannot revoke one session of a role. Ending a grant early attaches to the role an inline
deny policy ``grantbot-revoked-<grant id>`` whose condition matches only this session
(``aws:userid`` ends with ``:<grant id>``; grant ids are unique), so other grants of the same
role, and other users of it, are untouched. The policy is removed once the credentials' own
expiry has passed: the expiry is recorded in grantbot's Redis (:mod:`bot.store.provider_state`)
before AssumeRole is called, and the removal is a cleanup entry there that the serve loop
sweeps (:meth:`AWSSTSProvider.housekeeping`), so a restart loses neither. A grant ending at
its natural expiry needs no policy: its credentials have already stopped working.

grantbot's own AWS identity needs ``sts:AssumeRole`` and ``sts:SetSourceIdentity`` on the
role (its trust policy too), and ``iam:GetRole``, ``iam:GetRolePolicy``, ``iam:PutRolePolicy``,
``iam:DeleteRolePolicy`` on it; docs/policies.md has the JSON.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from bot.domain.credentials import Credential, CredentialField
from bot.errors import PolicyDenied, ProviderError
from bot.providers.aws_client import AWSClients, is_code
from bot.providers.aws_limits import STS_MAX_S, STS_MIN_S, sts_duration_refusal, sts_limit_s
from bot.providers.aws_provider_settings import (
    AWSSTSRoleSettings,
    AWSSTSSettings,
    compact_json,
    role_name,
)
from bot.providers.base import GrantContext, RequestContext, ensure_not_expired
from bot.providers.naming import check_grant_id
from bot.providers.validation import parse_role_settings, parse_settings
from bot.store.provider_state import ProviderState

log = logging.getLogger(__name__)

KIND: Final = "aws_sts"
DENY_POLICY_PREFIX: Final = "grantbot-revoked-"
#: Added to the recorded expiry before a deny policy is removed (clock skew between this
#: host and AWS; a session used a moment past our expiry must still be refused).
CLEANUP_MARGIN_S: Final = 300
#: Added to the expiry recorded before AssumeRole (the call's own latency).
ISSUE_SLACK_S: Final = 60
#: How long a role's MaxSessionDuration and grantbot's own identity are reused.
LOOKUP_TTL_S: Final = 300.0
_SOURCE_IDENTITY_RE: Final = re.compile(r"^[\w+=,.@-]{2,64}$")


def deny_policy_name(grant_id: str) -> str:
    return DENY_POLICY_PREFIX + check_grant_id(grant_id)


def deny_policy_document(grant_id: str) -> dict[str, Any]:
    """Deny everything to the one session named ``grant_id``, and to nothing else: an assumed
    role's ``aws:userid`` is ``<role id>:<session name>``."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GrantbotRevokedSession",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:userid": f"*:{check_grant_id(grant_id)}"}},
            }
        ],
    }


class AWSSTSProvider:
    """One STS session per grant; see the module docstring for the full contract."""

    type: ClassVar[str] = KIND
    needs_email: ClassVar[bool] = True

    def __init__(
        self,
        settings: AWSSTSSettings,
        *,
        state: ProviderState,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.state = state
        self.clock = clock
        self.aws = AWSClients(settings, what=KIND)
        self._max_session: dict[str, tuple[float, int | None]] = {}
        self._chaining: tuple[float, bool] | None = None

    # -- limits ----------------------------------------------------------------------------

    async def _role_max_session(self, role_arn: str) -> int | None:
        """The role's MaxSessionDuration (iam:GetRole, cached); None when IAM will not say."""
        cached = self._max_session.get(role_arn)
        if cached is not None and time.monotonic() - cached[0] < LOOKUP_TTL_S:
            return cached[1]
        try:
            role = await self.aws.run(
                lambda a: a.iam().get_role(RoleName=role_name(role_arn)), action="reading the role"
            )
        except ProviderError as e:
            if not is_code(e, "AccessDenied", "AccessDeniedException"):
                raise
            log.warning("aws_sts: iam:GetRole is not allowed; role session limits unknown")
            value = None
        else:
            value = int(role["Role"].get("MaxSessionDuration") or STS_MIN_S * 4)
        self._max_session[role_arn] = (time.monotonic(), value)
        return value

    async def _role_chaining(self) -> bool:
        """Whether grantbot's own credentials are a role's session (declared, or asked)."""
        if self.settings.role_chaining:
            return True
        if self._chaining is not None and time.monotonic() - self._chaining[0] < LOOKUP_TTL_S:
            return self._chaining[1]
        me = await self.aws.run(lambda a: a.sts().get_caller_identity(), action="who am I")
        chaining = ":assumed-role/" in str(me.get("Arn", ""))
        self._chaining = (time.monotonic(), chaining)
        return chaining

    async def precheck(self, request: RequestContext, *, now: float) -> None:
        """Refuse a duration AWS will not give this role (see bot.providers.aws_limits)."""
        role = parse_settings(
            AWSSTSRoleSettings,
            request.role_settings,
            what=f"role {request.role} of {request.resource}",
        )
        # The fixed bounds first: they need no call to AWS.
        refusal = sts_duration_refusal(
            request.duration_s, max_session_s=None, role_chaining=False, role_name=role.role_name
        )
        if refusal is None:
            max_session = await self._role_max_session(role.role_arn)
            if role.max_session_duration is not None:
                max_session = min(max_session or STS_MAX_S, role.max_session_duration)
            refusal = sts_duration_refusal(
                request.duration_s,
                max_session_s=max_session,
                role_chaining=await self._role_chaining(),
                role_name=role.role_name,
            )
        if refusal is not None:
            raise PolicyDenied(f"{request.resource} {request.role}: {refusal}")

    async def _duration_s(self, role: AWSSTSRoleSettings, remaining_s: float) -> int:
        """What to ask AWS for: the grant's remaining time, at least STS's minimum (a
        re-issue close to the end; the revocation at expiry then ends it early), at most
        what the role allows (an extension past it gets credentials ending at that limit)."""
        wanted = max(STS_MIN_S, int(remaining_s))
        try:
            max_session = await self._role_max_session(role.role_arn)
            chaining = await self._role_chaining()
        except ProviderError as e:
            log.info("aws_sts: session limits unknown (%s); asking for %ds", e, wanted)
            return min(wanted, STS_MAX_S)
        return min(wanted, sts_limit_s(max_session_s=max_session, role_chaining=chaining))

    # -- issue -----------------------------------------------------------------------------

    async def issue(self, ctx: GrantContext, *, now: float) -> Credential:
        ensure_not_expired(ctx, now=now)
        gid = check_grant_id(ctx.grant_id)
        role = parse_role_settings(AWSSTSRoleSettings, ctx)
        duration = await self._duration_s(role, ctx.expires_at - now)
        before = await self.state.get(gid)
        if before is not None and before.get("denied"):
            # Issued again after a revocation (an extension won the race): lift the deny.
            await self._remove_deny(gid, str(before["role_name"]))
            await self.state.cancel_cleanup(gid)
        prior_until = float(before["until"]) if before and not before.get("denied") else 0.0
        record = {"role_arn": role.role_arn, "role_name": role.role_name, "denied": False}
        # Recorded first: if we die after AssumeRole, revoke still knows what may be alive.
        await self.state.put(
            gid, {**record, "until": max(prior_until, now + duration + ISSUE_SLACK_S)}
        )
        kwargs: dict[str, Any] = {
            "RoleArn": role.role_arn,
            "RoleSessionName": gid,
            "DurationSeconds": duration,
            "SourceIdentity": source_identity(ctx),
        }
        if role.session_policy is not None:
            kwargs["Policy"] = compact_json(role.session_policy)
        if role.policy_arns:
            kwargs["PolicyArns"] = [{"arn": arn} for arn in role.policy_arns]
        try:
            out = await self.aws.run(lambda a: a.sts().assume_role(**kwargs), action="AssumeRole")
        except BaseException:
            await (self.state.put(gid, before) if before else self.state.forget(gid))
            raise
        creds = out["Credentials"]
        expires_at = creds["Expiration"].timestamp()
        await self.state.put(gid, {**record, "until": max(prior_until, expires_at)})
        log.info(
            "aws_sts: issued session %s of role %s (%ds)",
            gid,
            role.role_name,
            duration,
            extra={"grant_id": gid},
        )
        return sts_credential(
            ctx,
            access_key_id=creds["AccessKeyId"],
            secret_access_key=creds["SecretAccessKey"],
            session_token=creds["SessionToken"],
            expires_at=expires_at,
            session_arn=out["AssumedRoleUser"]["Arn"],
            role_arn=role.role_arn,
            region=self.settings.region,
        )

    # -- revoke ------------------------------------------------------------------------------

    async def revoke(self, ctx: GrantContext) -> None:
        """Deny the grant's session until its credentials have expired; nothing to do when
        they already have. Idempotent (the same policy is put again)."""
        gid = check_grant_id(ctx.grant_id)
        now = self.clock()
        record = await self.state.get(gid)
        if record is None:
            try:
                name = parse_role_settings(AWSSTSRoleSettings, ctx).role_name
            except ProviderError:
                log.info("aws_sts: nothing recorded for %s; nothing to revoke", gid)
                return
            # Never recorded (issued before a crash that lost Redis, or never issued): a
            # session can live at most STS's minimum past the grant's end.
            record = {"role_name": name, "until": ctx.expires_at + STS_MIN_S, "denied": False}
        until = float(record["until"])
        if until <= now:
            if not record.get("denied"):
                await self.state.forget(gid)
            log.info("aws_sts: session %s already expired at AWS", gid, extra={"grant_id": gid})
            return
        name = str(record["role_name"])
        document = compact_json(deny_policy_document(gid))
        await self.aws.run(
            lambda a: a.iam().put_role_policy(
                RoleName=name, PolicyName=deny_policy_name(gid), PolicyDocument=document
            ),
            action="attaching the deny policy",
        )
        await self.state.put(gid, {**record, "denied": True})
        await self.state.clean_after(gid, at=until + CLEANUP_MARGIN_S)
        log.info(
            "aws_sts: session %s of role %s denied until its expiry",
            gid,
            name,
            extra={"grant_id": gid},
        )

    async def _remove_deny(self, grant_id: str, name: str) -> None:
        """Remove the grant's deny policy from role ``name``; already gone is success."""
        try:
            await self.aws.run(
                lambda a: a.iam().delete_role_policy(
                    RoleName=name, PolicyName=deny_policy_name(grant_id)
                ),
                action="removing the deny policy",
            )
        except ProviderError as e:
            if not is_code(e, "NoSuchEntity"):
                raise

    async def housekeeping(self, *, now: float) -> int:
        """Remove the deny policies whose sessions have expired (restart-safe: the list is
        in Redis). Raises TargetUnavailable / ProviderError on the first one AWS refuses."""
        removed = 0
        for gid, record in (await self.state.due(now=now)).items():
            if record.get("denied"):
                await self._remove_deny(gid, str(record["role_name"]))
                removed += 1
            await self.state.forget(gid)
        if removed:
            log.info("aws_sts: removed %d deny polic(ies) of expired sessions", removed)
        return removed

    # -- reading -------------------------------------------------------------------------------

    async def check(self, ctx: GrantContext) -> bool:
        """Credentials issued, not yet expired, and no deny policy on the role for them."""
        record = await self.state.get(check_grant_id(ctx.grant_id))
        if record is None or record.get("denied") or float(record["until"]) <= self.clock():
            return False
        name = str(record["role_name"])
        try:
            await self.aws.run(
                lambda a: a.iam().get_role_policy(
                    RoleName=name, PolicyName=deny_policy_name(ctx.grant_id)
                ),
                action="reading the deny policy",
            )
        except ProviderError as e:
            if is_code(e, "NoSuchEntity"):
                return True
            raise
        return False

    async def live_grant_ids(self) -> set[str]:
        """Grants whose recorded credentials have not expired and are not denied."""
        now = self.clock()
        return {
            gid
            for gid, record in (await self.state.records()).items()
            if not record.get("denied") and float(record.get("until") or 0) > now
        }

    async def health(self) -> None:
        await self.aws.run(lambda a: a.sts().get_caller_identity(), action="health check")

    async def aclose(self) -> None:
        self.aws.close()


def source_identity(ctx: GrantContext) -> str:
    """Who CloudTrail names: the requester's email when AWS accepts it, else the Slack id."""
    if ctx.email and _SOURCE_IDENTITY_RE.match(ctx.email):
        return ctx.email
    return ctx.user


def sts_credential(
    ctx: GrantContext,
    *,
    access_key_id: str,
    secret_access_key: str,
    session_token: str,
    expires_at: float,
    session_arn: str,
    role_arn: str,
    region: str,
) -> Credential:
    """What the requester's DM shows: the three values, their expiry, an ``export`` block and
    a ``~/.aws/credentials`` profile ready to paste."""
    at = datetime.fromtimestamp(expires_at, tz=UTC)
    profile = re.sub(r"[^A-Za-z0-9_-]", "-", f"grantbot-{ctx.resource}-{ctx.role}")
    export = "\n".join(
        [
            f"export AWS_ACCESS_KEY_ID={access_key_id}",
            f"export AWS_SECRET_ACCESS_KEY={secret_access_key}",
            f"export AWS_SESSION_TOKEN={session_token}",
            f"export AWS_REGION={region}",
        ]
    )
    credentials_file = "\n".join(
        [
            f"[{profile}]",
            f"aws_access_key_id = {access_key_id}",
            f"aws_secret_access_key = {secret_access_key}",
            f"aws_session_token = {session_token}",
            f"region = {region}",
        ]
    )
    note = (
        f"These credentials stop working at {at:%Y-%m-%d %H:%M:%S} UTC, when AWS expires "
        "them; if the grant is revoked earlier, grantbot attaches a deny policy to the role "
        "that refuses this session from then on."
    )
    if expires_at + 1 < ctx.expires_at:
        note += " They end before your grant does (the role's session limit)."
    return Credential(
        ref=session_arn,
        expires_at=expires_at,
        fields=(
            CredentialField("role", role_arn),
            CredentialField("session", session_arn),
            CredentialField("access key id", access_key_id),
            CredentialField("secret access key", secret_access_key, secret=True),
            CredentialField("session token", session_token, secret=True),
            CredentialField("expires", f"{at:%Y-%m-%dT%H:%M:%SZ}"),
            CredentialField("export", export, secret=True),
            CredentialField(f"~/.aws/credentials [{profile}]", credentials_file, secret=True),
            CredentialField("note", note),
        ),
    )
