"""Provider types by name, building them from policies.yaml, and checking their settings.

A resource's provider settings are the dict under ``resources.<name>.provider`` in
policies.yaml (``{type: postgres, dsn: "${ORDERS_DB_DSN}", ...}``); a role's are the dict under
``resources.<name>.roles.<role>.provider``. Each type has a pydantic model for each level
(unknown keys are errors). ``${VAR}`` references are allowed in string settings and resolved
from the environment when the provider is built; messages name keys and variables, never values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from pydantic import ValidationError

from bot.envrefs import referenced_names, resolve
from bot.errors import ConfigError
from bot.providers import aws_identity_center, aws_sts
from bot.providers.aws_identity_center import AWSIdentityCenterProvider
from bot.providers.aws_provider_settings import (
    AWSIdentityCenterRoleSettings,
    AWSIdentityCenterSettings,
    AWSSTSRoleSettings,
    AWSSTSSettings,
    identity_center_limit_findings,
    sts_limit_findings,
)
from bot.providers.aws_sts import AWSSTSProvider
from bot.providers.base import (
    Provider,
    ProviderSettings,
    RoleLimits,
    SettingsFinding,
)
from bot.providers.mysql import MySQLProvider, MySQLRoleSettings, MySQLSettings
from bot.providers.noop import NoopProvider, NoopRoleSettings, NoopSettings
from bot.providers.postgres import PostgresProvider, PostgresRoleSettings, PostgresSettings
from bot.providers.redis_acl import RedisACLProvider, RedisACLRoleSettings, RedisACLSettings
from bot.providers.ssh_cert import SSHCertProvider, SSHCertRoleSettings, SSHCertSettings
from bot.providers.validation import error_messages
from bot.providers.webhook import WebhookProvider, WebhookRoleSettings, WebhookSettings
from bot.store.provider_state import ProviderState

#: Prefixes of the key paths in validate_provider_settings' messages (relative to a resource).
RESOURCE_PREFIX: Final = "provider"
ROLE_PREFIX: Final = "roles.{role}.provider"


#: A provider type's own check of one role's limits: (resource settings, role settings,
#: the role's limits after inheritance) -> findings. For ``grantbot policy check``.
LimitCheck = Callable[[ProviderSettings, ProviderSettings, RoleLimits], list[SettingsFinding]]


@dataclass(frozen=True, slots=True)
class ProviderType:
    """One kind of provider: its settings models and how to build it from valid settings.

    ``stateful`` providers keep books in grantbot's Redis and are built with a
    :class:`~bot.store.provider_state.ProviderState` (``factory(model, state=...)``);
    ``limit_check`` adds the type's own findings to ``grantbot policy check``.
    """

    name: str
    settings_model: type[ProviderSettings]
    role_settings_model: type[ProviderSettings]
    factory: Callable[..., Provider]
    stateful: bool = False
    limit_check: LimitCheck | None = None

    @property
    def prechecks(self) -> bool:
        """Its providers check requests before approval (:class:`RequestChecker`)."""
        return hasattr(self.factory, "precheck")

    @property
    def needs_email(self) -> bool:
        return bool(getattr(self.factory, "needs_email", False))

    @property
    def housekeeps(self) -> bool:
        """Its providers have leftovers to sweep (:class:`Housekeeper`)."""
        return hasattr(self.factory, "housekeeping")


#: Every provider type, by the name used as ``type:`` in policies.yaml.
PROVIDER_TYPES: Final[Mapping[str, ProviderType]] = MappingProxyType(
    {
        t.name: t
        for t in (
            ProviderType("postgres", PostgresSettings, PostgresRoleSettings, PostgresProvider),
            ProviderType("mysql", MySQLSettings, MySQLRoleSettings, MySQLProvider),
            ProviderType("redis_acl", RedisACLSettings, RedisACLRoleSettings, RedisACLProvider),
            ProviderType("ssh_cert", SSHCertSettings, SSHCertRoleSettings, SSHCertProvider),
            ProviderType("webhook", WebhookSettings, WebhookRoleSettings, WebhookProvider),
            ProviderType("noop", NoopSettings, NoopRoleSettings, NoopProvider),
            ProviderType(
                aws_sts.KIND,
                AWSSTSSettings,
                AWSSTSRoleSettings,
                AWSSTSProvider,
                stateful=True,
                limit_check=sts_limit_findings,
            ),
            ProviderType(
                aws_identity_center.KIND,
                AWSIdentityCenterSettings,
                AWSIdentityCenterRoleSettings,
                AWSIdentityCenterProvider,
                stateful=True,
                limit_check=identity_center_limit_findings,
            ),
        )
    }
)


def _type_problem(settings: Mapping[str, Any]) -> str | None:
    kind = settings.get("type")
    if kind is None:
        return f"{RESOURCE_PREFIX}.type: missing; one of {', '.join(PROVIDER_TYPES)}"
    if kind not in PROVIDER_TYPES:
        return f"{RESOURCE_PREFIX}.type: unknown provider type {kind!r}; one of " + ", ".join(
            PROVIDER_TYPES
        )
    return None


def provider_type(settings: Mapping[str, Any]) -> ProviderType | None:
    """The type named by a resource's provider settings, or None when unknown."""
    return PROVIDER_TYPES.get(str(settings.get("type")))


def build_provider(
    settings: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    state: ProviderState | None = None,
) -> Provider:
    """The provider for one resource, from its settings dict with ``${VAR}`` resolved.

    Raises :class:`ConfigError` for an unknown type, a variable missing from ``env`` (naming
    it), invalid settings (naming the keys) or a stateful type without ``state``. Nothing is
    connected here: the first operation (or ``health()``) reaches the target.
    """
    problem = _type_problem(settings)
    if problem:
        raise ConfigError(problem)
    kind = PROVIDER_TYPES[str(settings["type"])]
    resolved = resolve(dict(settings), env=env, key=RESOURCE_PREFIX)
    try:
        model = kind.settings_model.model_validate(resolved)
    except ValidationError as e:
        messages = error_messages(e, prefix=RESOURCE_PREFIX)
        # from None: the ValidationError's text would carry the resolved (secret) values.
        raise ConfigError(f"{kind.name} provider settings: " + "; ".join(messages)) from None
    if kind.stateful:
        if state is None:
            raise ConfigError(f"{kind.name} providers keep their books in grantbot's Redis")
        return kind.factory(model, state=state)
    return kind.factory(model)


def check_provider_limits(
    resource_settings: Mapping[str, Any],
    role_settings_by_role: Mapping[str, Mapping[str, Any]],
    limits_by_role: Mapping[str, RoleLimits],
) -> list[tuple[str, SettingsFinding]]:
    """The provider type's own findings about each role's limits, as (role, finding).

    For the policy checker, once :func:`validate_provider_settings` found nothing: settings
    are taken as written (``${VAR}`` unresolved), and a role whose settings do not validate
    is skipped."""
    kind = provider_type(resource_settings)
    if kind is None or kind.limit_check is None:
        return []
    try:
        model = kind.settings_model.model_validate(dict(resource_settings))
    except ValidationError:
        return []
    found: list[tuple[str, SettingsFinding]] = []
    for role, role_settings in role_settings_by_role.items():
        limits = limits_by_role.get(role)
        try:
            role_model = kind.role_settings_model.model_validate(dict(role_settings))
        except ValidationError:
            continue
        if limits is not None:
            found += [(role, f) for f in kind.limit_check(model, role_model, limits)]
    return found


def validate_provider_settings(
    resource_settings: Mapping[str, Any],
    role_settings_by_role: Mapping[str, Mapping[str, Any]],
    *,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Every problem in one resource's provider settings and its roles' provider settings.

    For the policy checker. Each message is ``"<key path>: <problem>"`` with the path relative
    to the resource: ``provider.dsn`` or ``roles.read.provider.grant_roles[0]``. ``${VAR}``
    references are left unresolved (only string settings may hold them); pass ``env`` to also
    report referenced variables that are not set. An empty list means valid.
    """
    problem = _type_problem(resource_settings)
    if problem:
        return [problem]
    kind = PROVIDER_TYPES[str(resource_settings["type"])]
    problems: list[str] = []
    try:
        kind.settings_model.model_validate(dict(resource_settings))
    except ValidationError as e:
        problems += error_messages(e, prefix=RESOURCE_PREFIX)
    if env is not None:
        for key, value in resource_settings.items():
            for name in referenced_names(value):
                if name not in env:
                    problems.append(
                        f"{RESOURCE_PREFIX}.{key}: environment variable {name} is not set"
                    )
    for role, role_settings in role_settings_by_role.items():
        try:
            kind.role_settings_model.model_validate(dict(role_settings))
        except ValidationError as e:
            problems += error_messages(e, prefix=ROLE_PREFIX.format(role=role))
    return problems
