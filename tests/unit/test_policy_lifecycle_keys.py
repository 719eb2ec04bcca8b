"""The lifecycle's policy keys (issue 13): remind_before, extend_without_approval and
max_lead_time inherit like every limit; null turns the first two off; the repository's
policies.yaml uses them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import PolicyError
from bot.policy_loader import parse_policy

ROOT = Path(__file__).resolve().parents[2]
BASE = b"""
defaults:
  requesters: {everyone: true}
  approvers: {users: [U0BOB]}
  remind_before: 15m
  extend_without_approval: 2h
resources:
  db:
    provider: {type: noop}
    max_lead_time: 1d
    roles:
      read: {}
      write:
        remind_before: null
        extend_without_approval: null
        max_lead_time: 2h
  other:
    provider: {type: noop}
    roles:
      play: {}
"""


def test_the_keys_inherit_and_null_turns_off() -> None:
    policy = parse_policy(BASE, filename="p.yaml", check_providers=False).policy
    read, write, play = policy.rule("db", "read"), policy.rule("db", "write"), policy.rule("other")
    assert (read.remind_before_s, read.extend_without_approval_s, read.max_lead_time_s) == (
        900,
        7200,
        86400,
    )
    assert (write.remind_before_s, write.extend_without_approval_s, write.max_lead_time_s) == (
        None,
        None,
        7200,
    )
    assert play.max_lead_time_s == 7 * 86400  # the built-in


def test_built_ins_remind_ten_minutes_before_and_extensions_need_approval() -> None:
    policy = parse_policy(
        BASE.replace(b"  remind_before: 15m\n  extend_without_approval: 2h\n", b""),
        filename="p.yaml",
        check_providers=False,
    ).policy
    rule = policy.rule("other")
    assert rule.remind_before_s == 600 and rule.extend_without_approval_s is None


def test_max_lead_time_has_no_off() -> None:
    with pytest.raises(PolicyError, match="max_lead_time"):
        parse_policy(
            BASE.replace(b"max_lead_time: 1d", b"max_lead_time: null"),
            filename="p.yaml",
            check_providers=False,
        )


def test_the_repositorys_policy_uses_the_keys() -> None:
    policy = parse_policy(
        (ROOT / "policies.yaml").read_bytes(), filename="policies.yaml", check_providers=False
    ).policy
    assert policy.rule("orders-db", "read").extend_without_approval_s == 7200
    root = policy.rule("prod-ssh", "root")
    assert (root.remind_before_s, root.max_lead_time_s) == (300, 86400)


def test_a_remind_before_no_grant_can_reach_is_a_warning() -> None:
    loaded = parse_policy(
        BASE.replace(b"      read: {}", b"      read: {max_duration: 15m}"),
        filename="p.yaml",
        check_providers=False,
    )
    [warning] = [w for w in loaded.warnings if "remind_before" in w.message]
    assert "no grant of db read is ever reminded" in warning.message
    assert "remind_before 15m is not below max_duration 15m" in warning.message
