"""The report's sections, charts and tables, from the aggregated figures. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.duration import format_utc
from bot.report import svg
from bot.report.aggregate import DAILY_SERIES, DAY, Aggregator, Tally
from bot.report.stats import RELATIVE_ACCURACY, Sketch
from bot.report.tables import Section, Table, rows_of


@dataclass(frozen=True, slots=True)
class ChainResult:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    detail: str
    checkpoint: str  # the newest checkpoint, described


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 1:
        return f"{sign}{s * 1000:.0f} ms"
    if s < 120:
        return f"{sign}{s:.1f} s"
    if s < 7200:
        return f"{sign}{s / 60:.1f} min"
    if s < 2 * DAY:
        return f"{sign}{s / 3600:.1f} h"
    return f"{sign}{s / DAY:.1f} d"


def _q(sketch: Sketch, q: float) -> float | None:
    value = sketch.quantile(q)
    return None if value is None else round(value, 3)


def build_sections(
    agg: Aggregator, chain: ChainResult
) -> tuple[list[tuple[str, str, str]], list[Section]]:
    """Summary cards and sections, in the order an access review reads them."""
    totals = [sum(day[i] for day in agg.daily) for i in range(len(DAILY_SERIES))]
    late_p99 = agg.lateness.quantile(0.99)
    cards = [
        ("audit chain", "intact" if chain.ok else "TAMPERED", "ok" if chain.ok else "bad"),
        *((name, f"{n:,}", "") for name, n in zip(DAILY_SERIES, totals, strict=True)),
        ("peak standing access", str(agg.standing.peak.level), ""),
        ("p99 revocation lateness", duration_text(late_p99), ""),
        ("REVOKE_FAILED episodes", f"{len(agg.episodes):,}", "bad" if len(agg.episodes) else ""),
    ]
    return cards, [
        _standing(agg),
        _daily(agg),
        _decisions(agg),
        _lateness(agg),
        _episodes(agg),
        _review(agg),
        _tallies("people", "Per person", "person", agg.people),
        _tallies("resources", "Per resource", "resource", agg.resources),
        _policies(agg),
        _chain(chain),
    ]


def _standing(agg: Aggregator) -> Section:
    st = agg.standing
    peaks = st.peaks()
    rows: list[list[object]] = [
        [resource, peak.level, format_utc(peak.at)] for resource, peak in peaks.items()
    ]
    rows.append(["(all)", st.peak.level, format_utc(st.peak.at)])
    return Section(
        id="standing",
        title="Standing access over time",
        intro=(
            "Live grants (ACTIVE or REVOKE_FAILED: access may exist) per resource, stacked; "
            f"each bar is the time-weighted average over {duration_text(st.width)}. "
            "The dashed line is the peak: the most grants live at one moment."
        ),
        figures=[("peak", f"{st.peak.level} at {format_utc(st.peak.at)}")],
        charts=[
            svg.stacked_bars(
                st.bucket_starts(),
                st.width,
                st.averages(),
                peak_level=st.peak.level,
                peak_at=st.peak.at,
            )
        ],
        tables=[
            Table(
                "standing_peaks",
                "Peak live grants by resource",
                ["resource", "peak_live_grants", "peak_at"],
                rows_of(rows),
            )
        ],
    )


def _daily(agg: Aggregator) -> Section:
    days = [d * DAY for d in agg.days]
    series = {name: [day[i] for day in agg.daily] for i, name in enumerate(DAILY_SERIES)}
    rows: list[list[object]] = [
        [format_utc(ts)[:10], *counts] for ts, counts in zip(days, agg.daily, strict=True)
    ]
    return Section(
        id="daily",
        title="Requests and decisions per day",
        intro="Per UTC day: requests filed, approvals (the last approval a request needed), "
        "denials, auto-approvals by policy, and requests that timed out undecided.",
        charts=[svg.line_chart(days, series)],
        tables=[Table("daily", "Per day", ["day", *DAILY_SERIES], rows_of(rows))],
    )


def _decisions(agg: Aggregator) -> Section:
    rows: list[list[object]] = [
        [r, s.count, _q(s, 0.5), _q(s, 0.9), round(s.max, 3)]
        for r, s in sorted(agg.decision_by_resource.items())
    ]
    a = agg.decision_all
    if a.count:
        rows.append(["(all)", a.count, _q(a, 0.5), _q(a, 0.9), round(a.max, 3)])
    hist = agg.decision_hist
    return Section(
        id="decisions",
        title="Time from request to decision",
        intro="From the request to its approval, auto-approval or denial. Percentiles are "
        f"within {RELATIVE_ACCURACY:.0%} of the exact value (a bounded-memory sketch).",
        figures=[
            ("p50", duration_text(a.quantile(0.5))),
            ("p90", duration_text(a.quantile(0.9))),
            ("decisions", f"{a.count:,}"),
        ],
        charts=[
            svg.histogram(
                "decisions",
                hist.labels,
                hist.counts,
                caption="time from request to decision",
                color=svg.PALETTE[0],
            )
        ],
        tables=[
            Table(
                "decision_time",
                "By resource (seconds)",
                ["resource", "decisions", "p50_s", "p90_s", "max_s"],
                rows_of(rows),
            )
        ],
    )


def _lateness(agg: Aggregator) -> Section:
    s = agg.lateness
    hist = agg.lateness_hist
    summary: list[list[object]] = [
        [s.count, _q(s, 0.5), _q(s, 0.99), round(s.max, 3) if s.count else None]
    ]
    buckets: list[list[object]] = [
        [label, count] for label, count in zip(hist.labels, hist.counts, strict=True)
    ]
    return Section(
        id="lateness",
        title="Revocation lateness",
        intro="For every grant that ended at or after its expiry: ended at − expires at.",
        figures=[
            ("ends", f"{s.count:,}"),
            ("p99", duration_text(s.quantile(0.99))),
            ("max", duration_text(s.max if s.count else None)),
        ],
        charts=[
            svg.histogram(
                "lateness",
                hist.labels,
                hist.counts,
                caption="revocation lateness",
                color=svg.PALETTE[1],
            )
        ],
        tables=[
            Table(
                "lateness",
                "Summary (seconds)",
                ["ends", "p50_s", "p99_s", "max_s"],
                rows_of(summary),
            ),
            Table("lateness_histogram", "Histogram", ["lateness", "grants"], rows_of(buckets)),
        ],
    )


def _episodes(agg: Aggregator) -> Section:
    longest = sorted(agg.longest_episodes, reverse=True)
    items = [(f"{gid} {resource}", seconds) for seconds, gid, resource in longest]
    charts = (
        [svg.horizontal_bars("episodes", items, caption="REVOKE_FAILED episodes by duration")]
        if items
        else []
    )
    return Section(
        id="episodes",
        title="REVOKE_FAILED episodes",
        intro="A grant whose revocation failed at its target, from the first failure until it "
        "ended (or until now, if it still fails). The chart shows the longest "
        f"{len(items)}; the table lists all, oldest first.",
        charts=charts,
        tables=[
            Table(
                "revoke_failed_episodes",
                "Episodes",
                agg.episodes.headers,
                agg.episodes.rows,
                count=len(agg.episodes),
            )
        ],
    )


def _review(agg: Aggregator) -> Section:
    return Section(
        id="review",
        title="Auto-approved and on-call grants",
        intro="Grants no person approved in the moment (an auto_approve rule matched), and "
        "grants approved by someone asked as on call after an escalation: for review after "
        "the fact. Oldest decision first.",
        tables=[
            Table(
                "auto_and_oncall_grants",
                "Grants to review",
                agg.review.headers,
                agg.review.rows,
                count=len(agg.review),
            )
        ],
    )


def _tallies(name: str, title: str, key: str, table: dict[str, Tally]) -> Section:
    rows: list[list[object]] = [
        [
            k,
            t.requests,
            t.grants,
            t.denied,
            round(t.seconds_held / 3600, 2),
            " ".join(sorted(t.approvers)),
        ]
        for k, t in sorted(table.items())
    ]
    return Section(
        id=name,
        title=title,
        intro="Requests filed and denied in the period; grants live at any time in it, the "
        "hours they were held within it, and who approved them.",
        tables=[
            Table(
                name,
                title,
                [key, "requests", "grants", "denied", "hours_held", "approvers"],
                rows_of(rows),
            )
        ],
    )


def _policies(agg: Aggregator) -> Section:
    rows: list[list[object]] = [
        [
            version[:12],
            format_utc(v.loaded_at) or "(not recorded)",
            v.loads,
            format_utc(v.first_seen),
            format_utc(v.last_seen),
            v.entries,
            v.requests,
            "yes" if version == agg.policy_at_start else "",
        ]
        for version, v in agg.versions_in_period()
    ]
    return Section(
        id="policies",
        title="Policy versions in force",
        intro="Each version is the SHA-256 of policies.yaml. Loaded at: its first "
        "POLICY_LOADED (a replica starting) or POLICY_RELOADED entry; logs from before "
        "grantbot recorded starts show when a version was first seen instead.",
        tables=[
            Table(
                "policy_versions",
                "Versions",
                [
                    "version",
                    "loaded_at",
                    "loads_in_period",
                    "first_seen",
                    "last_seen",
                    "entries_in_period",
                    "requests_in_period",
                    "in_force_at_start",
                ],
                rows_of(rows),
            )
        ],
    )


def _chain(chain: ChainResult) -> Section:
    rows: list[list[object]] = [
        [
            "intact" if chain.ok else "TAMPERED",
            chain.entries,
            chain.head_seq,
            chain.head_hash,
            chain.detail,
            chain.checkpoint,
        ]
    ]
    return Section(
        id="chain",
        title="Audit chain verification",
        intro="Every entry's hash recomputed and linked to the one before, and the head key "
        "compared, while this report was made. Signed checkpoints are checked by "
        "`grantbot audit verify --public-key K`.",
        figures=[("result", "intact" if chain.ok else "TAMPERED")],
        tables=[
            Table(
                "chain_verification",
                "Result",
                ["result", "entries", "head_seq", "head_hash", "detail", "newest_checkpoint"],
                rows_of(rows),
            )
        ],
    )
