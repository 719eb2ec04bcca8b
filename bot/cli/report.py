"""``grantbot report``: the access review for auditors (one self-contained HTML file, and
every table as CSV with ``--csv DIR``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bot.cli.common import parse_since
from bot.config import Settings
from bot.errors import UsageError


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from bot.report.build import ReportRequest, make_report
    from bot.wiring import open_store

    now = time.time()
    since = parse_since(args.since, now=now)
    until = parse_since(args.until, now=now) if args.until else now
    if until <= since:
        raise UsageError("--until must be after --since")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: no such directory {out.parent}")
    request = ReportRequest(
        since=since,
        until=until,
        now=now,
        out=out,
        csv_dir=Path(args.csv) if args.csv else None,
    )
    show = args.progress or sys.stderr.isatty()
    async with open_store(settings) as store:
        done = await make_report(store, request, progress=sys.stderr if show else None)
    verdict = "intact" if done.chain.ok else f"TAMPERED ({done.chain.detail})"
    print(f"report written to {done.html}: {done.entries:,} audit entries, chain {verdict}")
    if done.csvs:
        print(f"{len(done.csvs)} CSV files in {request.csv_dir}")
    return 0


def add_report_command(sub: Any) -> None:
    rp = sub.add_parser("report", help="access review: one offline HTML file (and CSV tables)")
    rp.add_argument("--since", default="30d", help="start: ISO time, epoch s or ago (30d)")
    rp.add_argument("--until", help="end: ISO time, epoch seconds or ago (default now)")
    rp.add_argument("--out", default="report.html", help="the HTML file (default report.html)")
    rp.add_argument("--csv", metavar="DIR", help="also write every table as DIR/<table>.csv")
    rp.add_argument("--progress", action="store_true", help="progress on stderr even if no TTY")
    rp.set_defaults(handler=cmd_report)
