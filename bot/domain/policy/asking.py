"""The policy keys of issue 13 about *how* people ask: ``may_request_for`` (who may ask on
whose behalf) and ``bundles`` (named sets of resource/role pairs asked for at once).

The decisions on them and their cross-checks for ``grantbot policy check``; their shapes
are in :mod:`bot.domain.policy.asking_schema`. Pure: the date and user-group
membership are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING

from bot.domain.policy.asking_schema import OnBehalfRule
from bot.domain.policy.rules import _holds, describe, usergroup_ids
from bot.domain.policy.schema import Loc, Requesters
from bot.errors import PolicyDenied

if TYPE_CHECKING:
    from bot.domain.policy.rules import Policy


def may_request_for(
    rules: Sequence[OnBehalfRule],
    *,
    requester: str,
    beneficiary: str,
    groups: Mapping[str, object],
    today: date,
    usergroups: Mapping[str, frozenset[str]],
) -> bool:
    """True when some ``may_request_for`` rule lets ``requester`` ask for ``beneficiary``."""

    def holds(block: Requesters, user: str) -> bool:
        return block.everyone or _holds(
            block,
            user,
            groups=groups,  # type: ignore[arg-type]
            today=today,
            usergroups=usergroups,
        )

    return any(
        holds(rule.requesters, requester) and holds(rule.beneficiaries, beneficiary)
        for rule in rules
    )


def may_ask_for_anyone(
    policy: Policy, *, requester: str, today: date, usergroups: Mapping[str, frozenset[str]]
) -> bool:
    """True when some ``may_request_for`` rule lists ``requester`` among its requesters (the
    request form then offers "Request for")."""
    return any(
        rule.requesters.everyone
        or _holds(
            rule.requesters, requester, groups=policy.groups, today=today, usergroups=usergroups
        )
        for rule in policy.may_request_for
    )


def requestable_bundles(policy: Policy, requestable: set[tuple[str, str]]) -> list[str]:
    """The bundles whose every item is in ``requestable`` ((resource, role) pairs)."""
    return [
        name
        for name, items in policy.bundles.items()
        if all(tuple(item.split("/", 1)) in requestable for item in items)
    ]


def on_behalf_refusal(
    policy: Policy,
    *,
    requester: str,
    beneficiary: str,
    today: date,
    usergroups: Mapping[str, frozenset[str]],
) -> str | None:
    """Why ``requester`` may not ask on ``beneficiary``'s behalf, or None when they may."""
    if may_request_for(
        policy.may_request_for,
        requester=requester,
        beneficiary=beneficiary,
        groups=policy.groups,
        today=today,
        usergroups=usergroups,
    ):
        return None
    if not policy.may_request_for:
        return "the policy lets nobody request access for someone else (may_request_for)"
    return (
        f"the policy does not let you request access for <@{beneficiary}>; may_request_for "
        "allows: "
        + "; ".join(
            f"{describe(r.requesters)} for {describe(r.beneficiaries)}"
            for r in policy.may_request_for
        )
    )


def on_behalf_usergroups(policy: Policy) -> set[str]:
    """Every Slack user-group id ``may_request_for`` names (directly or through groups)."""
    blocks = [
        block for rule in policy.may_request_for for block in (rule.requesters, rule.beneficiaries)
    ]
    return usergroup_ids(blocks, groups=policy.groups)


def bundle_items(policy: Policy, name: str) -> list[tuple[str, str]]:
    """The (resource, role) pairs of bundle ``name``; PolicyDenied naming the bundles when
    there is no such bundle."""
    items = policy.bundles.get(name)
    if items is None:
        known = ", ".join(policy.bundles) or "none are defined"
        raise PolicyDenied(f'unknown bundle "{name}"; bundles: {known}')
    return [(r, role) for r, _, role in (item.partition("/") for item in items)]


def bundle_findings(policy: Policy) -> list[tuple[Loc, str]]:
    """Cross-checks: every bundle item names an existing resource and role; every group
    ``may_request_for`` names exists."""
    found: list[tuple[Loc, str]] = []
    for name, items in policy.bundles.items():
        for i, item in enumerate(items):
            resource, _, role = item.partition("/")
            if not policy.has_rule(resource, role):
                found.append(
                    (("bundles", name, i), f'"{item}" is not a resource/role of this policy')
                )
        if len(set(items)) != len(items):
            found.append((("bundles", name), f"bundle {name} lists an item twice"))
    for i, rule in enumerate(policy.may_request_for):
        for key, block in (("requesters", rule.requesters), ("beneficiaries", rule.beneficiaries)):
            for j, group in enumerate(block.groups):
                if group not in policy.groups:
                    found.append(
                        (("may_request_for", i, key, "groups", j), f'unknown group "{group}"')
                    )
    return found
