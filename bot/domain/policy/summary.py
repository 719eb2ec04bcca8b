"""The summary `grantbot policy check` prints: one plain-text row per resource role."""

from __future__ import annotations

from bot.domain.duration import format_duration
from bot.domain.policy.rules import LoadedPolicy, describe


def format_summary(loaded: LoadedPolicy) -> str:
    """A plain-text table of every resource role (resource, role, requesters, approvers,
    N = approvals required, max duration) under a header line counting the warnings.

    The warnings themselves are not repeated here: the caller prints ``loaded.warnings``.
    """
    policy = loaded.policy
    header = ("resource", "role", "requesters", "approvers", "N", "max duration")
    rows: list[tuple[str, ...]] = [header]
    for rname, spec in policy.resources.items():
        for role in spec.roles:
            rule = policy.rule(rname, role)
            approvers = describe(rule.approvers)
            if rule.approvers is not None and rule.approvers.channel:
                approvers += f" (posted to {rule.approvers.channel})"
            rows.append(
                (
                    rname,
                    role,
                    describe(rule.requesters),
                    approvers,
                    str(rule.approvals_required),
                    format_duration(rule.max_duration_s),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    table = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    n_roles = len(rows) - 1
    lines = [
        f"{loaded.path}: ok, version {loaded.version[:12]}, {len(policy.resources)} resources, "
        f"{n_roles} roles, {len(loaded.warnings)} warnings",
        "",
        *table,
        *asking_lines(loaded),
    ]
    return "\n".join(lines) + "\n"


def asking_lines(loaded: LoadedPolicy) -> list[str]:
    """Issue 13's keys under the table: each bundle's items, each may_request_for rule."""
    policy = loaded.policy
    lines: list[str] = []
    if policy.bundles:
        lines += ["", "bundles:"]
        lines += [
            f"  {name}: {', '.join(i.replace('/', ' ') for i in items)}"
            for name, items in policy.bundles.items()
        ]
    if policy.may_request_for:
        lines += ["", "may request for others:"]
        lines += [
            f"  {describe(r.requesters)} for {describe(r.beneficiaries)}"
            for r in policy.may_request_for
        ]
    return lines
