"""Building providers from policy settings, and checking those settings for the policy
checker: ${VAR} resolution, strict models per type, messages that name keys, never values."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import ConfigError
from bot.providers.postgres import PostgresProvider
from bot.providers.redis_acl import RedisACLRoleSettings
from bot.providers.registry import PROVIDER_TYPES, build_provider, validate_provider_settings

SECRET = "pw-Zk8q3-do-not-print"


def test_every_documented_type_is_registered() -> None:
    """PROVIDER_TYPES names each provider the policy may use."""
    assert set(PROVIDER_TYPES) == {
        "postgres",
        "mysql",
        "redis_acl",
        "ssh_cert",
        "webhook",
        "noop",
        "aws_sts",
        "aws_identity_center",
    }


def test_references_are_resolved_from_env_when_building() -> None:
    """${VAR} (whole value or part of one) is replaced from env before validation."""
    provider = build_provider(
        {"type": "postgres", "dsn": "postgresql://admin:${PG_PW}@db.internal:6543/orders"},
        env={"PG_PW": SECRET},
    )
    assert isinstance(provider, PostgresProvider)
    assert SECRET in provider.settings.dsn.get_secret_value()
    assert (provider.host, provider.port, provider.dbname) == ("db.internal", 6543, "orders")
    assert SECRET not in repr(provider.settings)


def test_a_missing_variable_is_named_without_printing_any_value() -> None:
    """A reference to an unset variable is a ConfigError naming it and the setting."""
    with pytest.raises(
        ConfigError, match=r"ORDERS_DB_DSN is not set \(setting provider.dsn\)"
    ) as e:
        build_provider({"type": "postgres", "dsn": "${ORDERS_DB_DSN}"}, env={"OTHER": SECRET})
    assert SECRET not in str(e.value)


def test_invalid_resolved_settings_name_the_key_but_not_the_value() -> None:
    """A resolved DSN of the wrong kind is reported by key; its (secret) text is not shown,
    not even in the exception chain."""
    with pytest.raises(ConfigError, match=r"provider\.dsn") as e:
        build_provider({"type": "postgres", "dsn": "${DSN}"}, env={"DSN": f"mysql://u:{SECRET}@h/"})
    assert SECRET not in str(e.value)
    assert e.value.__cause__ is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dsn": "postgresql://x@h/db"}, "provider.type: missing"),
        ({"type": "oracle"}, "unknown provider type 'oracle'"),
        (
            {"type": "postgres", "dsn": "postgresql://x@h/db", "bogus": 1},
            "provider.bogus: unknown setting",
        ),
        ({"type": "postgres"}, "provider.dsn: Field required"),
    ],
)
def test_build_refuses_bad_settings_naming_the_key(settings: dict[str, Any], message: str) -> None:
    """Missing or unknown types, unknown keys and missing keys are ConfigErrors naming them."""
    with pytest.raises(ConfigError, match=message):
        build_provider(settings, env={})


VALID: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"type": "postgres", "dsn": "${ORDERS_DB_DSN}"}, {"grant_roles": ["orders_read"]}),
    ({"type": "mysql", "dsn": "${BILLING_DB_DSN}"}, {"grants": ["SELECT ON billing.*"]}),
    (
        {"type": "redis_acl", "url": "${CACHE_REDIS_URL}"},
        {"commands": "+@read", "keys": "~cache:*"},
    ),
    ({"type": "redis_acl", "url": "redis://h:6379"}, {"commands": "+@read +@write +flushdb"}),
    (
        {"type": "ssh_cert", "ca_key_file": "/etc/grantbot/ca", "krl_file": "/srv/krl"},
        {
            "principals": ["deploy", "app.ops"],
            "extensions": ["permit-pty", "permit-port-forwarding"],
        },
    ),
    (
        {"type": "webhook", "url": "https://access.internal/hook", "secret": "${HOOK_SECRET}"},
        {"data": {"team": "payments", "level": 2}},
    ),
    ({"type": "noop"}, {}),
]


@pytest.mark.parametrize(("resource", "role"), VALID)
def test_valid_policy_settings_have_no_problems(
    resource: dict[str, Any], role: dict[str, Any]
) -> None:
    """The shapes policies.yaml uses validate cleanly, ${VAR} references included."""
    assert validate_provider_settings(resource, {"read": role}) == []


@pytest.mark.parametrize(
    ("resource", "role", "expected"),
    [
        (
            {"type": "postgres", "dsn": "${D}"},
            {"grant_roles": ["pg_execute_server_program"]},
            "roles.read.provider.grant_roles[0]: 'pg_execute_server_program' may not be granted",
        ),
        (
            {"type": "postgres", "dsn": "${D}"},
            {"grant_roles": ["gb_g_7k3p9xqm"]},
            "may not be granted",
        ),
        (
            {"type": "postgres", "dsn": "${D}"},
            {"grant_roles": ['x"; DROP ROLE y; --']},
            "not a plain lower-case role name",
        ),
        (
            {"type": "postgres", "dsn": "${D}"},
            {"grant_roles": []},
            "roles.read.provider.grant_roles: List should have at least 1 item",
        ),
        (
            {"type": "postgres", "dsn": "${D}"},
            {"grant_role": ["r"]},
            "roles.read.provider.grant_role: unknown setting",
        ),
        (
            {"type": "mysql", "dsn": "${D}"},
            {"grants": ["ALL ON *.*"]},
            "roles.read.provider.grants[0]: privilege 'ALL' is not allowed",
        ),
        (
            {"type": "redis_acl", "url": "${U}"},
            {"commands": "+@read nopass"},
            "'nopass' is not a command rule",
        ),
        ({"type": "redis_acl", "url": "${U}"}, {"commands": ">hunter2"}, "is not a command rule"),
        (
            {"type": "redis_acl", "url": "${U}"},
            {"commands": "+@read", "keys": "allkeys"},
            "'allkeys' is not a key rule",
        ),
        (
            {"type": "redis_acl", "url": "${U}"},
            {"commands": "+@read", "channels": "events:*"},
            "'events:*' is not a channel rule",
        ),
        (
            {"type": "ssh_cert", "ca_key_file": "c", "krl_file": "k"},
            {"principals": ["root,admin"]},
            "roles.read.provider.principals[0]: 'root,admin' is not a principal",
        ),
        (
            {"type": "ssh_cert", "ca_key_file": "c", "krl_file": "k"},
            {"principals": ["root"], "extensions": ["permit-everything"]},
            "roles.read.provider.extensions[0]",
        ),
        (
            {"type": "webhook", "url": "ftp://x/", "secret": "${S}"},
            {},
            "provider.url: must be an http:// or https:// URL",
        ),
        (
            {"type": "webhook", "url": "https://x/", "secret": "short"},
            {},
            "provider.secret: must be at least 16 characters",
        ),
        (
            {"type": "mysql", "dsn": "postgresql://x@h/"},
            {"grants": ["SELECT ON a.b"]},
            "provider.dsn: must be a mysql://",
        ),
    ],
)
def test_problems_are_reported_by_key_path(
    resource: dict[str, Any], role: dict[str, Any], expected: str
) -> None:
    """Each problem comes back as '<path>: <why>', the path relative to the resource."""
    problems = validate_provider_settings(resource, {"read": role})
    assert any(expected in p for p in problems), problems


def test_validation_never_echoes_a_literal_secret() -> None:
    """Even a secret written literally (and wrongly) is not repeated in the messages."""
    problems = validate_provider_settings(
        {"type": "webhook", "url": f"ftp://u:{SECRET}@x/", "secret": "tiny"}, {}
    )
    assert problems
    assert not any(SECRET in p or "tiny" in p for p in problems)


def test_with_env_unset_references_are_reported() -> None:
    """Given env, each referenced variable that is not set is reported by key and name."""
    problems = validate_provider_settings(
        {"type": "postgres", "dsn": "${ORDERS_DB_DSN}"}, {"read": {"grant_roles": ["r"]}}, env={}
    )
    assert problems == ["provider.dsn: environment variable ORDERS_DB_DSN is not set"]


def test_redis_acl_rules_are_split_and_command_rules_lower_cased() -> None:
    """Each rule setting takes a string or a list; only command rules are lower-cased."""
    role = RedisACLRoleSettings.model_validate(
        {"commands": "+GET +@READ", "keys": ["~Cache:* %R~Logs:*"], "channels": "&Events:*"}
    )
    assert role.acl_rules() == ["~Cache:*", "%R~Logs:*", "&Events:*", "+get", "+@read"]
