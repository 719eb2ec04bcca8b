"""The operations runbook documents every metric the bot exports, and no metric it doesn't."""

from __future__ import annotations

import re
from pathlib import Path

from bot import metrics

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_metric_is_in_the_runbook_and_the_runbook_names_only_real_ones() -> None:
    exported = {
        # prometheus-client strips a counter's _total from the family name; the series keep it.
        f"{m.name}_total" if m.type == "counter" else m.name
        for m in metrics.REGISTRY.collect()
        if m.name.startswith("grantbot_")
    }
    documented = set(re.findall(r"`(grantbot_[a-z_]+)[{`]", RUNBOOK.read_text(encoding="utf-8")))
    # Alert expressions name a histogram's series (…_bucket); the table names the family.
    documented = {re.sub(r"_bucket$", "", name) for name in documented}
    assert exported, "no grantbot metric is registered"
    assert exported - documented == set(), "metrics missing from docs/operations.md"
    assert documented - exported == set(), "docs/operations.md names metrics that do not exist"
