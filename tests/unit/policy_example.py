"""The policy the policy unit tests share: several resources, inheritance at every level,
groups with an expiring member and a Slack user group, auto-approval and escalation."""

from __future__ import annotations

from datetime import date
from functools import cache

from bot.domain.policy.rules import LoadedPolicy
from bot.policy_loader import parse_policy

POLICY = rb"""
incident_channels: "^inc-"
groups:
  sre:
    members: [U0SRE1, U0SRE2]
  dba:
    members:
      - U0DBA1
      - {id: U0CONTRACT, expires: 2026-06-30}
      - S0DBAGROUP
oncall:
  primary: {type: static, members: [U0SRE1], start: 2026-01-05}
defaults:
  requesters: {groups: [sre, dba]}
  approvers: {groups: [sre], channel: C0ACCESS}
  max_duration: 1h
  request_timeout: 20m
  require_ticket: '^(INC|CHG)-\d+$'
resources:
  orders-db:
    description: Orders PostgreSQL
    provider: {type: postgres, dsn: "${ORDERS_DB_DSN}", host: db.internal}
    max_duration: 2h
    default_role: read
    roles:
      read:
        max_duration: 4h
        default_duration: 1h
        provider: {grant_roles: [orders_read]}
        auto_approve:
          - {on_call: primary, incident: true, max_duration: 2h, per_user_per_day: 2}
          - {incident: true, max_duration: 15m}
      write:
        approvals_required: 2
        approvers: {groups: [dba, sre]}
        provider: {grant_roles: [orders_write]}
        escalation:
          - {escalate_after: 10m, approvers: {users: [U0BOSS]}}
          - {escalate_after: 30m, oncall: primary}
  cache:
    provider: {type: redis_acl, url: "${CACHE_URL}"}
    requesters: {everyone: true}
    require_reason: false
    require_ticket: null
    roles:
      read:
        provider: {commands: "+@read", keys: "~cache:*"}
        auto_approve: [{max_duration: 30m}]
  vault:
    provider: {type: noop}
    requesters: {usergroups: [S0VAULT]}
    allow_self_approval: true
    approvals_required: 2
    roles:
      read: {}
      admin: {}
"""

TODAY = date(2026, 3, 1)
NO_GROUPS: dict[str, frozenset[str]] = {}


@cache
def example() -> LoadedPolicy:
    """:data:`POLICY` loaded (once) as ``policies.yaml``."""
    return parse_policy(POLICY, filename="policies.yaml")
