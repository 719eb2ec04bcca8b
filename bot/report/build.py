"""Making the report: read the whole audit log a page at a time (XRANGE with COUNT), verify
the chain and aggregate as it goes, then write the HTML page and, if asked, the CSV files.

Memory stays bounded by one page of entries plus the aggregator's open grants (see
:mod:`bot.report.aggregate`); long lists are spooled to disk and streamed into the page.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

from bot.audit.checkpoint import parse
from bot.domain.duration import format_utc
from bot.errors import AuditChainError
from bot.report.aggregate import Aggregator
from bot.report.csv_out import write_csvs
from bot.report.html import write_html
from bot.report.progress import Progress
from bot.report.sections import ChainResult, build_sections
from bot.store.audit import AuditEntry, ChainWalker
from bot.store.grants import GrantStore

PAGE: Final = 1000
#: Times the head may move on (the bot still writing) before the walk stops following it.
_CATCH_UP: Final = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRequest:
    since: float
    until: float
    now: float
    out: Path
    csv_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class ReportDone:
    entries: int
    chain: ChainResult
    html: Path
    csvs: list[Path]


async def make_report(
    store: GrantStore, request: ReportRequest, *, progress: TextIO | None
) -> ReportDone:
    """Build the report of ``request``'s period from ``store``; StoreUnavailable if Redis
    goes away (nothing is written then)."""
    head_seq, _ = await store.audit.head()
    meter = Progress(progress, total=head_seq)
    agg = Aggregator(since=request.since, until=request.until, now=request.now)
    try:
        chain = await _walk(store, agg, meter)
        agg.finish()
        meter.finish(agg.entries)
        cards, sections = build_sections(agg, chain)
        _write_atomically(
            request.out,
            lambda f: write_html(
                f,
                title="grantbot access review",
                meta=_meta(request, store, agg),
                cards=cards,
                sections=sections,
            ),
        )
        csvs = (
            write_csvs(request.csv_dir, (t for s in sections for t in s.tables))
            if request.csv_dir is not None
            else []
        )
    finally:
        agg.close()
    return ReportDone(entries=agg.entries, chain=chain, html=request.out, csvs=csvs)


async def _walk(store: GrantStore, agg: Aggregator, meter: Progress) -> ChainResult:
    walker = ChainWalker()
    fault: str | None = None
    start = "-"
    for _ in range(_CATCH_UP):
        while True:
            page = await store.audit.read_page(start, count=PAGE)
            if not page:
                break
            for entry in page:
                if fault is None:
                    try:
                        walker.check(entry)
                    except AuditChainError as e:
                        fault = str(e)
            await _aggregate(store, agg, page)
            meter.update(agg.entries)
            start = "(" + page[-1].id
            if len(page) < PAGE:
                break
        head = await store.audit.head()
        if head[0] <= walker.count or fault is not None:
            break  # else: appended while we read; read on
    checkpoint = await _newest_checkpoint(store)
    if fault is None:
        try:
            verified = walker.finish(head)
        except AuditChainError as e:
            fault = str(e)
        else:
            return ChainResult(
                ok=True,
                entries=verified.entries,
                head_seq=verified.head_seq,
                head_hash=verified.head_hash,
                detail="every hash recomputed; the head agrees",
                checkpoint=checkpoint,
            )
    return ChainResult(
        ok=False,
        entries=walker.count,
        head_seq=head[0],
        head_hash=head[1],
        detail=fault or "",
        checkpoint=checkpoint,
    )


async def _aggregate(store: GrantStore, agg: Aggregator, page: Sequence[AuditEntry]) -> None:
    bodies: list[dict[str, Any]] = []
    for entry in page:
        try:
            bodies.append(json.loads(entry.body))
        except ValueError:
            bodies.append({"event": "(unreadable)"})  # the chain walk names the entry
    missing = list(dict.fromkeys(agg.missing(bodies)))
    if missing:
        records = await store.read_many(missing)
        for gid in missing:
            agg.adopt(records.get(gid), gid)
    for body in bodies:
        agg.add(body)


async def _newest_checkpoint(store: GrantStore) -> str:
    last = await store.checkpoints.last()
    if last is None:
        return "none (set GRANTBOT_AUDIT_SIGNING_KEY on the bot)"
    try:
        cp = parse(last.payload, where=f"checkpoint {last.id}")
    except AuditChainError as e:
        return str(e)
    when = format_utc(cp.at)
    return f"checkpoint {cp.n} at seq {cp.seq}, {when}, key {cp.key_id} (signature unchecked)"


def _meta(request: ReportRequest, store: GrantStore, agg: Aggregator) -> list[str]:
    since, until, made = (format_utc(ts) for ts in (request.since, request.until, request.now))
    return [
        f"Period {since} to {until}; made {made} "
        f"from the audit log {store.keys.audit} ({agg.entries:,} entries read, "
        f"{agg.entries_in_period:,} in the period).",
        "Times are UTC. Every table is also a CSV file (grantbot report --csv DIR).",
    ]


def _write_atomically(path: Path, write: Any) -> None:
    """Write through a temporary file beside ``path``, then rename: no half-written page."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            write(f)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
