"""What `grantbot policy check` finds wrong with a policy, each finding located by key path.

Two kinds of checks: :func:`check_policy` on a schema-valid policy (cross-references and
inherited values), and :func:`literal_secret_findings` on the raw document (a secret written
literally in provider settings), which runs before the schema so that it reports alongside
schema errors. The loader (:mod:`bot.policy_loader`) adds file and line to each finding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from bot.domain.duration import format_duration
from bot.domain.policy.asking import bundle_findings
from bot.domain.policy.rules import Policy, RoleRule, resolve_rule
from bot.domain.policy.schema import ENV_REFERENCE_RE, Approvers, Limits, Loc, Requesters


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found by a check, located by key path (the loader adds file and line)."""

    loc: Loc
    message: str
    severity: Literal["error", "warning"] = "error"


# --- cross-checks --------------------------------------------------------------------------


def _limit_blocks(policy: Policy) -> list[tuple[Loc, Limits]]:
    blocks: list[tuple[Loc, Limits]] = [(("defaults",), policy.defaults)]
    for name, spec in policy.resources.items():
        blocks.append((("resources", name), spec))
        blocks += [(("resources", name, "roles", r), rs) for r, rs in spec.roles.items()]
    return blocks


def _check_block(policy: Policy, loc: Loc, limits: Limits) -> list[Finding]:
    """References written in one defaults/resource/role block."""
    found: list[Finding] = []
    known_groups = ", ".join(policy.groups) or "none are defined"
    known_schedules = ", ".join(policy.oncall) or "none are defined"

    def groups_of(block: Requesters | Approvers | None, at: Loc) -> None:
        for i, g in enumerate(block.groups if block else ()):
            if g not in policy.groups:
                found.append(
                    Finding((*at, "groups", i), f'unknown group "{g}"; groups: {known_groups}')
                )

    def schedule(name: str | None, at: Loc) -> None:
        if name is not None and name not in policy.oncall:
            found.append(
                Finding(at, f'unknown on-call schedule "{name}"; oncall: {known_schedules}')
            )

    groups_of(limits.requesters, (*loc, "requesters"))
    groups_of(limits.approvers, (*loc, "approvers"))
    known_clients = ", ".join(policy.clients) or "none are defined"
    for i, c in enumerate(limits.requesters.clients if limits.requesters else ()):
        if c not in policy.clients:
            found.append(
                Finding(
                    (*loc, "requesters", "clients", i),
                    f'unknown client "{c}"; clients: {known_clients}',
                )
            )
    known_windows = ", ".join(policy.change_windows) or "none are defined"
    for i, auto in enumerate(limits.auto_approve or ()):
        schedule(auto.on_call, (*loc, "auto_approve", i, "on_call"))
        if auto.change_window is not None and auto.change_window not in policy.change_windows:
            found.append(
                Finding(
                    (*loc, "auto_approve", i, "change_window"),
                    f'unknown change window "{auto.change_window}"; '
                    f"change_windows: {known_windows}",
                )
            )
    previous_after = 0
    for i, tier in enumerate(limits.escalation or ()):
        at: Loc = (*loc, "escalation", i)
        groups_of(tier.approvers, (*at, "approvers"))
        schedule(tier.oncall, (*at, "oncall"))
        if tier.escalate_after <= previous_after:
            found.append(
                Finding(
                    (*at, "escalate_after"),
                    "escalation tiers must come in increasing order of escalate_after; "
                    f"{format_duration(tier.escalate_after)} follows "
                    f"{format_duration(previous_after)}",
                )
            )
        previous_after = tier.escalate_after
        if tier.oncall is None and tier.approvers is not None and not tier.approvers.has_principals:
            found.append(
                Finding(
                    (*at, "approvers"),
                    "names only a channel; add users, groups, usergroups or oncall "
                    "(a channel is where requests are posted, not who may approve)",
                )
            )
    return found


def _countable_approvers(rule: RoleRule) -> set[str] | None:
    """Distinct user ids that could approve, or None when some approver set has unknown size
    (a Slack user group, an on-call schedule or an undefined group). Expiry is ignored: the
    check reads no clock."""
    users: set[str] = set()
    blocks = [rule.approvers, *(t.approvers for t in rule.escalation)]
    if any(t.oncall is not None for t in rule.escalation):
        return None
    for block in blocks:
        if block is None:
            continue
        if block.usergroups:
            return None
        users.update(block.users)
        for g in block.groups:
            if g not in rule.groups:
                return None  # reported as an unknown group; don't pile a count error on it
            for member in rule.groups[g].members:
                if member.id.startswith("S"):
                    return None
                users.add(member.id)
    return users


def _check_rule(rule: RoleRule, where: dict[str, Loc], role_loc: Loc) -> list[Finding]:
    found: list[Finding] = []
    name = rule.name
    if rule.requesters is None:
        found.append(
            Finding(
                role_loc,
                f"{name} has no requesters; set requesters (or requesters: {{everyone: true}}) "
                "in defaults, on the resource or on the role",
            )
        )
    approvers = rule.approvers
    if approvers is None:
        found.append(
            Finding(
                role_loc,
                f"{name} has no approvers; set approvers in defaults, on the resource or the role",
            )
        )
    elif not approvers.has_principals:
        found.append(
            Finding(
                where["approvers"],
                "names only a channel; add users, groups or usergroups (a channel is where "
                "requests are posted, not who may approve)",
            )
        )
    else:
        users = _countable_approvers(rule)
        if users is not None and len(users) < rule.approvals_required:
            found.append(
                Finding(
                    where.get("approvals_required", role_loc),
                    f"approvals_required is {rule.approvals_required} but {name} has only "
                    f"{len(users)} approver{'s' if len(users) != 1 else ''}: "
                    f"{', '.join(sorted(users))}",
                )
            )
    if rule.default_duration_s > rule.max_duration_s:
        found.append(
            Finding(
                where.get("default_duration", role_loc),
                f"default_duration {format_duration(rule.default_duration_s)} is above "
                f"max_duration {format_duration(rule.max_duration_s)} for {name}",
            )
        )
    remind = rule.remind_before_s
    if "remind_before" in where and remind is not None and remind >= rule.max_duration_s:
        found.append(
            Finding(
                where["remind_before"],
                f"remind_before {format_duration(remind)} is not below max_duration "
                f"{format_duration(rule.max_duration_s)}, so no grant of {name} is ever reminded",
                "warning",
            )
        )
    if rule.allow_self_approval and rule.approvals_required == 1:
        found.append(
            Finding(
                where["allow_self_approval"],
                "allow_self_approval with approvals_required 1 lets a requester who is also "
                "an approver approve their own request alone",
                "warning",
            )
        )
    return found


def check_policy(policy: Policy) -> list[Finding]:
    """Every cross-reference and inherited-value problem in a schema-valid policy.

    Errors: unknown group or on-call schedule, unknown default_role, a type in a role's
    provider, escalation tiers out of order, nobody to request or approve, approvers that are
    only a channel, default_duration above max_duration (after inheritance), and
    approvals_required above the number of listed approvers (when that number is knowable).
    Warning: allow_self_approval with approvals_required 1. Each finding appears once.
    """
    found: list[Finding] = []
    for loc, block in _limit_blocks(policy):
        found += _check_block(policy, loc, block)
    for rname, spec in policy.resources.items():
        if spec.default_role is not None and spec.default_role not in spec.roles:
            found.append(
                Finding(
                    ("resources", rname, "default_role"),
                    f'"{spec.default_role}" is not a role of {rname}; roles: '
                    f"{', '.join(spec.roles) or 'none'}",
                )
            )
        if not spec.roles:
            found.append(Finding(("resources", rname, "roles"), f"{rname} has no roles"))
        for role, role_spec in spec.roles.items():
            role_loc: Loc = ("resources", rname, "roles", role)
            if "type" in role_spec.provider:
                found.append(
                    Finding(
                        (*role_loc, "provider", "type"),
                        "the provider type is set on the resource; a role's provider holds "
                        "only settings",
                    )
                )
            rule, where = resolve_rule(policy, rname, role)
            found += _check_rule(rule, where, role_loc)
    found += [Finding(loc, message) for loc, message in bundle_findings(policy)]
    return list(dict.fromkeys(found))  # one finding per (loc, message): defaults repeat


# --- secrets in provider settings ----------------------------------------------------------

_SECRET_WORDS: Final = frozenset(
    {"password", "passwd", "passphrase", "secret", "token", "key", "apikey", "credential"}
)
_URL_WORDS: Final = frozenset({"dsn", "url", "uri"})
# A key ending in one of these names or locates a secret (ca_key_file, key_id) rather than
# holding one, so it may be written literally.
_REFERENCE_SUFFIXES: Final = frozenset({"file", "path", "id", "name"})
# scheme://user:password@host -- the password is the part between ':' and '@'.
_URL_PASSWORD_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:([^/@]*)@")


def _is_env_ref(value: object) -> bool:
    return isinstance(value, str) and ENV_REFERENCE_RE.fullmatch(value) is not None


def _secret_problem(key: str, value: object) -> str | None:
    words = re.split(r"[_.-]", key.lower())
    if words[-1] in _REFERENCE_SUFFIXES:
        return None
    if _SECRET_WORDS.intersection(words):
        if _is_env_ref(value):
            return None
        return f'"{key}" looks secret; write it as an ${{ENV_VAR}} reference, not a literal'
    if _URL_WORDS.intersection(words) and isinstance(value, str):
        m = _URL_PASSWORD_RE.match(value)
        if m and m[1] and not _is_env_ref(m[1]):
            return (
                f'"{key}" has a password in it; write the password (or the whole value) '
                "as an ${ENV_VAR} reference"
            )
    return None


def _walk_settings(settings: object, loc: Loc) -> list[Finding]:
    found: list[Finding] = []
    if isinstance(settings, Mapping):
        for key, value in settings.items():
            if isinstance(value, Mapping | list):
                found += _walk_settings(value, (*loc, str(key)))
            elif (problem := _secret_problem(str(key), value)) is not None:
                found.append(Finding((*loc, str(key)), problem))
    elif isinstance(settings, list):
        for i, item in enumerate(settings):
            found += _walk_settings(item, (*loc, i))
    return found


def literal_secret_findings(data: object) -> list[Finding]:
    """Provider settings holding a literal secret, found in the raw (unvalidated) document.

    A setting is secret when a word of its key (split on ``_ - .``) is password, passwd,
    passphrase, secret, token, key, apikey or credential, unless the key ends in _file,
    _path, _id or _name; it must then be exactly ``${ENV_VAR}``. A dsn/url/uri setting with
    ``scheme://user:password@`` in it must have the password (or the whole value) as a
    reference. This runs on raw data so that it reports alongside schema errors.
    """
    found: list[Finding] = []
    resources = data.get("resources") if isinstance(data, Mapping) else None
    if not isinstance(resources, Mapping):
        return found
    for rname, resource in resources.items():
        if not isinstance(resource, Mapping):
            continue
        found += _walk_settings(resource.get("provider"), ("resources", str(rname), "provider"))
        roles = resource.get("roles")
        if isinstance(roles, Mapping):
            for role_name, role in roles.items():
                if isinstance(role, Mapping):
                    loc: Loc = ("resources", str(rname), "roles", str(role_name), "provider")
                    found += _walk_settings(role.get("provider"), loc)
    return found
