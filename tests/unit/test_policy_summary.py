"""The table `grantbot policy check` prints."""

from __future__ import annotations

import pytest

from bot.domain.policy.rules import LoadedPolicy
from bot.domain.policy.summary import format_summary
from tests.unit.policy_example import example


@pytest.fixture(scope="module")
def loaded() -> LoadedPolicy:
    return example()


def test_format_summary_is_a_table_of_every_role(loaded: LoadedPolicy) -> None:
    """The check summary has a header, then one row per resource role with its limits."""
    lines = format_summary(loaded).splitlines()
    assert lines[0] == (
        f"policies.yaml: ok, version {loaded.version[:12]}, 3 resources, 5 roles, 0 warnings"
    )
    assert lines[2].split() == [
        "resource",
        "role",
        "requesters",
        "approvers",
        "N",
        "max",
        "duration",
    ]
    assert lines[4].split("  ")[0] == "orders-db"
    assert " ".join(lines[4].split()) == (
        # write replaces the approvers block whole, so it has no channel
        "orders-db write group sre, group dba group dba, group sre 2 2h"
    )
    assert " ".join(lines[5].split()) == "cache read everyone group sre (posted to C0ACCESS) 1 1h"
    assert len(lines) == 2 + 1 + 5
