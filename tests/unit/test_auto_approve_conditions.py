"""Auto-approval judged condition by condition (``check_auto_approve``) decides exactly as
before it was split out, and ``explain_request`` reads the same verdicts.

The oracle below is the matching and blocker logic as ``decisions.py`` had it before issue
13 (one function per question, each re-reading the conditions); hypothesis draws rules and
requests and both must agree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.policy.decisions import auto_approve_blocker, match_auto_approve
from bot.domain.policy.explain import explain_request
from bot.domain.policy.rules import LoadedPolicy, RoleRule
from bot.domain.policy.schema import AutoApproveRule
from tests.unit.policy_example import example

SCHEDULES = ("primary", "dba")


def _old_match(
    rule: RoleRule,
    *,
    duration_s: int,
    on_call_schedules: frozenset[str],
    in_incident: bool,
    grants_today: int,
) -> int | None:
    for index, auto in enumerate(rule.auto_approve):
        if duration_s > auto.max_duration:
            continue
        if auto.on_call is not None and auto.on_call not in on_call_schedules:
            continue
        if auto.incident and not in_incident:
            continue
        if auto.per_user_per_day is not None and grants_today >= auto.per_user_per_day:
            continue
        return index
    return None


def _old_blocker(
    rule: RoleRule,
    *,
    duration_s: int,
    on_call_schedules: frozenset[str],
    unavailable: Mapping[str, str],
    in_incident: bool,
    grants_today: int,
) -> str | None:
    if (
        _old_match(
            rule,
            duration_s=duration_s,
            on_call_schedules=on_call_schedules,
            in_incident=in_incident,
            grants_today=grants_today,
        )
        is not None
    ):
        return None
    hoped = on_call_schedules | frozenset(unavailable)
    for index, auto in enumerate(rule.auto_approve):
        would = _old_match(
            replace(rule, auto_approve=(rule.auto_approve[index],)),
            duration_s=duration_s,
            on_call_schedules=hoped,
            in_incident=in_incident,
            grants_today=0,
        )
        if would is None:
            continue
        if auto.on_call is not None and auto.on_call in unavailable:
            return f"on-call schedule {auto.on_call}: {unavailable[auto.on_call]}"
        if auto.per_user_per_day is not None and grants_today >= auto.per_user_per_day:
            return (
                f"the limit of {auto.per_user_per_day} auto-approved {rule.name} grant"
                f"{'s' if auto.per_user_per_day != 1 else ''} per person per day is reached"
            )
    return None


autos = st.builds(
    AutoApproveRule,
    on_call=st.sampled_from([None, *SCHEDULES]),
    incident=st.booleans(),
    max_duration=st.sampled_from(["10m", "1h", "2h"]),
    per_user_per_day=st.sampled_from([None, 1, 2]),
)


@settings(max_examples=400, deadline=None)
@given(
    rules=st.lists(autos, max_size=3),
    duration_s=st.sampled_from([300, 600, 3600, 5400, 7200]),
    on_call=st.frozensets(st.sampled_from(SCHEDULES)),
    down=st.frozensets(st.sampled_from(SCHEDULES)),
    in_incident=st.booleans(),
    grants_today=st.integers(min_value=0, max_value=3),
)
def test_conditions_decide_as_before_and_explain_agrees(
    rules: list[AutoApproveRule],
    duration_s: int,
    on_call: frozenset[str],
    down: frozenset[str],
    in_incident: bool,
    grants_today: int,
) -> None:
    loaded: LoadedPolicy = example()
    base = loaded.policy.rule("orders-db", "read")
    rule = replace(base, auto_approve=tuple(rules))
    on_call = on_call - down  # a schedule that could not be asked lists nobody
    unavailable = {s: "unreachable" for s in down}
    args = {
        "duration_s": duration_s,
        "on_call_schedules": on_call,
        "in_incident": in_incident,
        "grants_today": grants_today,
    }
    matched = match_auto_approve(rule, **args)
    assert (None if matched is None else matched.index) == _old_match(rule, **args)
    assert auto_approve_blocker(rule, unavailable=unavailable, **args) == _old_blocker(
        rule, unavailable=unavailable, **args
    )

    # explain_request reads the rule from the policy: give it this one.
    policy = loaded.policy.model_copy(deep=True)
    spec = policy.resources["orders-db"].roles["read"]
    policy.resources["orders-db"].roles["read"] = spec.model_copy(
        update={"auto_approve": list(rules)}
    )
    explained = explain_request(
        replace(loaded, policy=policy),
        user="U0SRE1",
        resource="orders-db",
        role="read",
        duration_s=duration_s,
        today=date(2026, 6, 1),
        usergroups={},
        on_call_schedules=on_call,
        unavailable=unavailable,
        incident="INC-1" if in_incident else None,
        grants_today=grants_today,
        tier_on_call={},
    )
    assert (explained.match is None) == (matched is None)
    if matched is not None and explained.match is not None:
        assert explained.match.index == matched.index
    assert explained.blocker == _old_blocker(rule, unavailable=unavailable, **args)
    for check in explained.checks:
        assert check.holds == (
            _old_match(
                replace(rule, auto_approve=(check.rule,)),
                **args,
            )
            is not None
        )
