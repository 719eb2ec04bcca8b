"""Loading policies.yaml: schema validation, error locations, secrets, YAML problems."""

from __future__ import annotations

import hashlib
from pathlib import Path
from textwrap import dedent

import pytest

from bot.domain.policy.rules import LoadedPolicy
from bot.errors import PolicyError
from bot.policy_loader import load_policy, parse_policy

REPO_POLICY = Path(__file__).resolve().parents[2] / "policies.yaml"

# Line numbers matter in this file's assertions: count from 1 at "groups:".
BASE = """\
groups:
  sre:
    members: [U024BE7LH, U04QK7NJ2MZ]
defaults:
  requesters: {groups: [sre]}
  approvers: {groups: [sre]}
resources:
  orders-db:
    provider: {type: postgres, dsn: "${ORDERS_DB_DSN}"}
    roles:
      read:
        max_duration: 4h
      write:
        max_duration: 1h
"""


def parse(text: str) -> LoadedPolicy:
    # These fixtures exercise the YAML and schema layers with placeholder provider settings;
    # provider schemas are checked in test_policy_checks and by the repo policy's test.
    return parse_policy(dedent(text).encode(), filename="policies.yaml", check_providers=False)


def errors(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse(text)
    return [str(i) for i in caught.value.issues]


def test_repo_policy_loads_cleanly() -> None:
    """The repository's example policies.yaml loads with no errors and no warnings."""
    loaded = load_policy(REPO_POLICY)
    assert loaded.warnings == []
    assert loaded.path == str(REPO_POLICY)
    assert {"orders-db", "billing-db", "cache", "prod-ssh", "feature-flags"} <= set(
        loaded.policy.resources
    )
    assert loaded.policy.rule("orders-db", "write").approvals_required == 2


def test_version_is_sha256_of_the_raw_bytes() -> None:
    """A loaded policy's version is the SHA-256 hex digest of the file's bytes."""
    data = REPO_POLICY.read_bytes()
    assert load_policy(REPO_POLICY).version == hashlib.sha256(data).hexdigest()
    assert parse_policy(data, filename="x.yaml").version == hashlib.sha256(data).hexdigest()


def test_base_fixture_is_valid() -> None:
    """The fixture the error tests below mutate is itself a valid policy."""
    assert parse(BASE).policy.rule("orders-db", "write").max_duration_s == 3600


def test_bad_duration_names_file_line_and_key_path() -> None:
    """A bad duration is reported as file:line key.path: message, on the line it is written."""
    text = BASE.replace("        max_duration: 1h\n", "        max_duration: 10x\n")
    assert errors(text) == [
        'policies.yaml:14 resources.orders-db.roles.write.max_duration: "10x" is not a duration'
    ]


def test_unknown_key_is_an_error_with_its_line_and_a_suggestion() -> None:
    """An unknown key anywhere is an error at its line, listing the allowed keys."""
    text = BASE.replace("      read:\n", "      read:\n        max_duraton: 2h\n")
    [message] = errors(text)
    assert message.startswith(
        "policies.yaml:12 resources.orders-db.roles.read.max_duraton: unknown key; did you mean "
        '"max_duration"? (allowed here: requesters, approvers,'
    )


def test_unknown_top_level_key_is_an_error() -> None:
    """Strictness reaches the top level too."""
    assert errors(BASE + "version: 2\n") == [
        "policies.yaml:15 version: unknown key (allowed here: groups, defaults, resources, "
        "incident_channels, incident_id, oncall, clients, change_windows, may_request_for, "
        "bundles)"
    ]


def test_every_error_is_reported_in_line_order() -> None:
    """Schema errors and literal secrets are all reported at once, sorted by line."""
    text = (
        BASE.replace("[U024BE7LH, U04QK7NJ2MZ]", "[U024BE7LH, dana]")
        .replace('dsn: "${ORDERS_DB_DSN}"', "password: hunter2")
        .replace("max_duration: 4h", "max_duration: forever")
        .replace("max_duration: 1h", "approvals_required: 0")
    )
    assert errors(text) == [
        'policies.yaml:3 groups.sre.members[1]: "dana" is not a Slack user id (U...) or '
        "user-group id (S...)",
        'policies.yaml:9 resources.orders-db.provider.password: "password" looks secret; '
        "write it as an ${ENV_VAR} reference, not a literal",
        'policies.yaml:12 resources.orders-db.roles.read.max_duration: "forever" is not a duration',
        "policies.yaml:14 resources.orders-db.roles.write.approvals_required: must be at least 1",
    ]


def test_missing_key_is_reported_at_its_parent_mapping() -> None:
    """A required key that is absent is named, at the line of the mapping that lacks it."""
    text = BASE.replace('    provider: {type: postgres, dsn: "${ORDERS_DB_DSN}"}\n', "")
    assert errors(text) == ["policies.yaml:8 resources.orders-db.provider: required key is missing"]


def test_secret_never_appears_in_the_error() -> None:
    """Rejecting a literal secret names the key but never repeats the value."""
    text = BASE.replace('dsn: "${ORDERS_DB_DSN}"', "dsn: postgres://app:s3cr3t-pw@db/orders")
    [message] = errors(text)
    assert "s3cr3t-pw" not in message
    assert message == (
        'policies.yaml:9 resources.orders-db.provider.dsn: "dsn" has a password in it; write '
        "the password (or the whole value) as an ${ENV_VAR} reference"
    )


@pytest.mark.parametrize(
    ("setting", "ok"),
    [
        ('token: "${API_TOKEN}"', True),
        ("token: abc123", False),
        ("api_key: abc123", False),
        ("private_key: '-----BEGIN'", False),
        ("passwd: 12345", False),
        ("webhook_secret: xyz", False),
        ("tls: {key: literal}", False),
        ('dsn: "postgres://app:${PG_PW}@db/orders"', True),
        ("url: redis://:pw@cache:6379/0", False),
        ("url: https://flags.internal/grantbot", True),
        ("ca_key_file: /etc/grantbot/ssh_ca", True),
        ("keys: '~cache:*'", True),
    ],
)
def test_secret_looking_settings_must_be_env_references(setting: str, ok: bool) -> None:
    """Provider settings whose key looks secret (or URLs with a password) must be ${ENV}."""
    text = BASE.replace('dsn: "${ORDERS_DB_DSN}"', setting)
    if ok:
        parse(text)
    else:
        [message] = errors(text)
        assert message.startswith("policies.yaml:9 resources.orders-db.provider.")
        assert "${ENV_VAR}" in message


def test_role_level_provider_secrets_are_checked_too() -> None:
    """A literal secret in a role's provider settings is an error at its key."""
    text = BASE.replace(
        "        max_duration: 4h\n", "        max_duration: 4h\n        provider: {password: pw}\n"
    )
    assert errors(text) == [
        'policies.yaml:13 resources.orders-db.roles.read.provider.password: "password" looks '
        "secret; write it as an ${ENV_VAR} reference, not a literal"
    ]


def test_duplicate_yaml_key_is_an_error() -> None:
    """A key written twice in one mapping is an error at the second one, not silently dropped."""
    text = BASE.replace(
        "        max_duration: 4h\n", "        max_duration: 4h\n        max_duration: 8h\n"
    )
    assert errors(text) == [
        "policies.yaml:13 resources.orders-db.roles.read.max_duration: duplicate key "
        "(first at line 12)"
    ]


def test_invalid_yaml_reports_the_parser_line() -> None:
    """Unparseable YAML is one error carrying the line from the YAML parser."""
    # "roles: [" opens a flow sequence on line 10; the parser gives up at line 12's colon.
    assert errors(BASE.replace("    roles:\n", "    roles: [\n")) == [
        "policies.yaml:12: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence opened on line 10)"
    ]


def test_several_documents_are_an_error() -> None:
    """A file holding two YAML documents is refused at the second one."""
    assert errors(BASE + "---\nresources: {}\n") == [
        "policies.yaml:15: invalid YAML: expected a single document in the stream (line 1), "
        "but found another document"
    ]


def test_empty_and_non_mapping_documents_are_errors() -> None:
    """An empty file or a top level that is not a mapping is an error, not a crash."""
    assert errors("") == ["policies.yaml: the file is empty"]
    assert errors("- a\n- b\n") == ["policies.yaml:1: the top level must be a mapping"]


def test_impossible_date_is_a_located_yaml_error() -> None:
    """A date YAML recognises but the calendar does not (month 13) is an error with a line."""
    text = BASE.replace("[U024BE7LH, U04QK7NJ2MZ]", "[{id: U024BE7LH, expires: 2026-13-01}]")
    [message] = errors(text)
    assert message.startswith("policies.yaml:3: invalid YAML: '2026-13-01' is not a valid date")


def test_oncall_sources_are_validated_by_type() -> None:
    """On-call sources are checked per type, with tokens required to be ${ENV} references."""
    text = BASE + dedent(
        """\
        oncall:
          primary: {type: pagerduty, token: plaintext}
          ops: {type: opsgenie, schedule: ops, api_key: "${OG_KEY}", base_url: ftp://x}
          rota: {type: static, members: [U024BE7LH], start: 2026-01-05, handoff: 9:30, length: 1d}
          other: {type: victorops}
          pd: {type: pagerduty, token: "${PD_TOKEN}"}
        """
    )
    assert errors(text) == [
        'policies.yaml:16 oncall.primary.token: "plaintext" is not an ${ENV_VAR} reference; '
        "secrets are never written literally",
        'policies.yaml:17 oncall.ops.base_url: "ftp://x" is not an http(s) URL',
        "policies.yaml:19 oncall.other.type: \"victorops\" is not one of: 'static', "
        "'pagerduty', 'opsgenie'",
        "policies.yaml:20 oncall.pd: give exactly one of schedule_id or escalation_policy_id",
    ]


def test_static_schedule_accepts_unquoted_handoff() -> None:
    """An unquoted handoff like 9:30 (which YAML reads as 570) means 09:30."""
    rota = "{type: static, members: [U024BE7LH], start: 2026-01-05, handoff: 9:30}"
    text = f"{BASE}oncall:\n  rota: {rota}\n"
    source = parse(text).policy.oncall["rota"]
    assert source.type == "static"
    assert (source.handoff.hour, source.handoff.minute, source.length) == (9, 30, 7 * 86400)


def test_null_limit_is_an_error_but_null_require_ticket_clears_it() -> None:
    """An empty limit key is an error; require_ticket: null explicitly removes an inherited one."""
    assert errors(BASE.replace("        max_duration: 4h\n", "        max_duration:\n")) == [
        "policies.yaml:12 resources.orders-db.roles.read.max_duration: has no value; give one "
        "or remove the key to inherit"
    ]
    text = BASE.replace("defaults:\n", "defaults:\n  require_ticket: '^INC-\\d+$'\n").replace(
        "        max_duration: 4h\n", "        max_duration: 4h\n        require_ticket: null\n"
    )
    policy = parse(text).policy
    assert policy.rule("orders-db", "read").require_ticket is None
    rule = policy.rule("orders-db", "write").require_ticket
    assert rule is not None
    assert rule.pattern == "^INC-\\d+$"


def test_bad_regex_and_names_are_errors() -> None:
    """Regexes must compile; resource and role names must fit their patterns."""
    text = BASE.replace("resources:\n", 'incident_channels: "inc-("\nresources:\n').replace(
        "      write:\n", "      Write:\n"
    )
    assert errors(text) == [
        'policies.yaml:7 incident_channels: "inc-(" is not a valid regular expression: '
        "missing ), unterminated subpattern at position 4",
        'policies.yaml:14 resources.orders-db.roles.Write: "Write" is not a valid name '
        "(lowercase letters, digits, - and _, letter first)",
    ]


def test_unset_env_references_are_warnings_when_environ_is_given(tmp_path: Path) -> None:
    """With an environ, a ${VAR} it lacks is a warning naming the key, not an error."""
    path = tmp_path / "policies.yaml"
    path.write_text(BASE)
    loaded = load_policy(path, environ={"OTHER": "x"}, check_providers=False)
    [warning] = loaded.warnings
    assert warning.severity == "warning"
    assert str(warning) == (
        f"{path}:9 resources.orders-db.provider.dsn: ${{ORDERS_DB_DSN}} is not set in this "
        "environment"
    )
    assert (
        load_policy(
            path, environ={"ORDERS_DB_DSN": "postgres://..."}, check_providers=False
        ).warnings
        == []
    )
    assert load_policy(path, check_providers=False).warnings == []


def test_unreadable_file_is_a_policy_error(tmp_path: Path) -> None:
    """A missing file is a PolicyError naming the file."""
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory"
