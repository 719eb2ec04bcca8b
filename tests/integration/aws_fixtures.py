"""A real AWS API endpoint for the AWS provider tests: ``moto_server`` as its own process.

moto (installed with its ``server`` extra, from the package registry) answers the AWS APIs
grantbot calls -- STS, IAM, IAM Identity Center (sso-admin) and the Identity Store -- over
HTTP on a loopback port; boto3 reaches it through ``endpoint_url``, exactly as it would reach
AWS. Nothing is patched in process. Its state lives in the process: a stopped server forgets
everything, so :meth:`MotoServer.start` after :meth:`MotoServer.stop` re-seeds moto's random
ids (``/moto-api/seed``) and callers provision the same things again, which then get the same
ids -- the state AWS itself would have kept while it could not be reached.

What moto does not do (and AWS does) is listed in docs/policies.md ("What the tests do not
exercise"); the tests check what can be checked there (documents, presence, removal).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3
import redis.asyncio as aioredis

from bot.devtools.redis_server import free_port
from bot.providers.aws_identity_center import (
    AWSIdentityCenterProvider,
    AWSIdentityCenterSettings,
)
from bot.providers.aws_sts import AWSSTSProvider, AWSSTSSettings, deny_policy_name
from bot.providers.base import Credential
from bot.store.keys import Keys
from bot.store.provider_state import ProviderState

REGION = "us-east-1"
#: Any key works against moto (it does not check signatures unless told to).
ADMIN_KEY_ID, ADMIN_SECRET = "AKIAGRANTBOTADMIN000", "moto-admin-secret-not-real"
_START_TIMEOUT_S = 30.0
SEED = 4242


class MotoServer:
    """One ``moto_server`` child process on 127.0.0.1 (a free port, kept across restarts)."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="grantbot-moto-"))
        self.log = self.dir / "moto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log.read_text()[-800:]}")
            try:
                self._post("/moto-api/seed?a=" + str(SEED))
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto_server did not start answering")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def _post(self, path: str) -> bytes:
        request = urllib.request.Request(self.url + path, data=b"", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 (loopback)
            body: bytes = response.read()
            return body

    def client(self, service: str) -> Any:
        """An admin boto3 client of ``service`` on this server (the tests' own view of AWS)."""
        return boto3.session.Session(
            aws_access_key_id=ADMIN_KEY_ID,
            aws_secret_access_key=ADMIN_SECRET,
            region_name=REGION,
        ).client(service, endpoint_url=self.url)  # type: ignore[call-overload]

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Resource-level provider settings reaching this server."""
        return {
            "region": REGION,
            "endpoint_url": self.url,
            "access_key_id": ADMIN_KEY_ID,
            "secret_access_key": ADMIN_SECRET,
            **extra,
        }

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def trust_policy() -> str:
    """The role trust policy docs/policies.md gives: grantbot may assume the role and set the
    source identity (moto accepts it; AWS requires sts:SetSourceIdentity for SourceIdentity)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:role/grantbot"},
                    "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                }
            ],
        }
    )


def make_role(moto: MotoServer, *, name: str | None = None, max_session_s: int = 3600) -> str:
    """An IAM role grantbot hands out sessions of; returns its ARN."""
    name = name or f"gbtest-{secrets.token_hex(4)}"
    out = moto.client("iam").create_role(
        RoleName=name, AssumeRolePolicyDocument=trust_policy(), MaxSessionDuration=max_session_s
    )
    return str(out["Role"]["Arn"])


@dataclass(frozen=True)
class IdentityCenter:
    """An Identity Center instance with one permission set, and how to add users."""

    moto: MotoServer
    instance_arn: str
    identity_store_id: str
    permission_set_arn: str
    account_id: str = "123456789012"

    def role_settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "instance_arn": self.instance_arn,
            "permission_set_arn": self.permission_set_arn,
            "account_id": self.account_id,
            **extra,
        }

    def add_user(self, email: str) -> str:
        """A user in the Identity Store with ``email``; returns its user id."""
        out = self.moto.client("identitystore").create_user(
            IdentityStoreId=self.identity_store_id,
            UserName=email.split("@")[0] + "-" + secrets.token_hex(3),
            DisplayName=email,
            Name={"GivenName": "Test", "FamilyName": "User"},
            Emails=[{"Value": email, "Type": "work", "Primary": True}],
        )
        return str(out["UserId"])

    def assigned(self, user_id: str, *, permission_set_arn: str | None = None) -> int:
        """How many assignments of the permission set on the account ``user_id`` has now."""
        pages = self.moto.client("sso-admin").get_paginator("list_account_assignments")
        return sum(
            1
            for page in pages.paginate(
                InstanceArn=self.instance_arn,
                AccountId=self.account_id,
                PermissionSetArn=permission_set_arn or self.permission_set_arn,
            )
            for a in page["AccountAssignments"]
            if a["PrincipalId"] == user_id
        )

    def assign(self, user_id: str) -> None:
        """An assignment made by an administrator, not by grantbot."""
        self.moto.client("sso-admin").create_account_assignment(
            InstanceArn=self.instance_arn,
            TargetId=self.account_id,
            TargetType="AWS_ACCOUNT",
            PermissionSetArn=self.permission_set_arn,
            PrincipalType="USER",
            PrincipalId=user_id,
        )

    def unassign(self, user_id: str) -> None:
        self.moto.client("sso-admin").delete_account_assignment(
            InstanceArn=self.instance_arn,
            TargetId=self.account_id,
            TargetType="AWS_ACCOUNT",
            PermissionSetArn=self.permission_set_arn,
            PrincipalType="USER",
            PrincipalId=user_id,
        )


def identity_center(moto: MotoServer, *, name: str | None = None) -> IdentityCenter:
    """moto's Identity Center instance and a new permission set (1 hour sessions) on it."""
    sso = moto.client("sso-admin")
    instance = sso.list_instances()["Instances"][0]
    ps = sso.create_permission_set(
        Name=name or f"gbtest-{secrets.token_hex(4)}",
        InstanceArn=instance["InstanceArn"],
        SessionDuration="PT1H",
    )
    return IdentityCenter(
        moto=moto,
        instance_arn=instance["InstanceArn"],
        identity_store_id=instance["IdentityStoreId"],
        permission_set_arn=ps["PermissionSet"]["PermissionSetArn"],
    )


def session_client(service: str, moto: MotoServer, cred: Credential) -> Any:
    """A boto3 client signing with the credentials grantbot issued."""
    return boto3.session.Session(
        aws_access_key_id=cred.get("access key id"),
        aws_secret_access_key=cred.get("secret access key"),
        aws_session_token=cred.get("session token"),
        region_name=REGION,
    ).client(service, endpoint_url=moto.url)  # type: ignore[call-overload]


def deny_statement(moto: MotoServer, role_arn: str, grant_id: str) -> dict[str, Any] | None:
    """The deny policy grantbot attached to the role for ``grant_id``'s session, or None."""
    iam = moto.client("iam")
    name = role_arn.rsplit("/", 1)[-1]
    try:
        out = iam.get_role_policy(RoleName=name, PolicyName=deny_policy_name(grant_id))
    except iam.exceptions.NoSuchEntityException:
        return None
    document = out["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    [statement] = document["Statement"]
    return dict(statement)


def provider_state(redis: aioredis.Redis, keys: Keys, kind: str) -> ProviderState:
    """The books an AWS provider keeps in grantbot's Redis (the test's key prefix)."""
    return ProviderState(redis, keys=keys, kind=kind, resource="aws-test")


def sts_provider(
    moto: MotoServer, state: ProviderState, clock: Callable[[], float], **extra: Any
) -> AWSSTSProvider:
    """aws_sts on moto: one attempt per call, a short timeout, ``clock`` as its clock."""
    settings = AWSSTSSettings.model_validate(moto.settings(max_attempts=1, timeout_s=3, **extra))
    return AWSSTSProvider(settings, state=state, clock=clock)


def ic_provider(moto: MotoServer, state: ProviderState, **extra: Any) -> AWSIdentityCenterProvider:
    """aws_identity_center on moto: one attempt per call, quick status polls."""
    settings = AWSIdentityCenterSettings.model_validate(
        moto.settings(max_attempts=1, timeout_s=3, poll_initial_s=0.05, **extra)
    )
    return AWSIdentityCenterProvider(settings, state=state)
