"""The report as one self-contained HTML file: inline CSS and SVG, no script, nothing
fetched (its Content-Security-Policy forbids any load), so it opens offline and can be
attached to an audit as it is. Written as a stream: long tables never sit in memory."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final, TextIO

from bot.report.tables import Section, Table

CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;margin:0;
background:#f6f7f9}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;padding-top:8px;
border-top:1px solid #d8dce3}
.meta{color:#5b6475;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:8px;margin:16px 0}
.card{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px}
.ok{color:#1e7b34}.bad{color:#b3261e}
section{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:4px 16px 16px;
margin:16px 0}
svg.chart{display:block;max-width:100%;height:auto;margin:8px 0}
svg .grid{stroke:#e3e6eb}svg .tick,svg .legend{font-size:11px;fill:#5b6475}
svg .peak{stroke:#b3261e;stroke-dasharray:4 3}svg .peak-label{font-size:11px;fill:#b3261e}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:12.5px}
th,td{border-bottom:1px solid #e3e6eb;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f5;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.csv{color:#5b6475;font-size:12px}
.scroll{max-height:360px;overflow:auto;border:1px solid #e3e6eb}
.figures{display:flex;flex-wrap:wrap;gap:16px;margin:4px 0}
"""


def write_html(
    out: TextIO,
    *,
    title: str,
    meta: Sequence[str],
    cards: Sequence[tuple[str, str, str]],
    sections: Sequence[Section],
) -> None:
    """The page: a header, summary cards (label, value, css class), then each section's
    figures, charts and tables."""
    out.write(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
    )
    out.write(f"<h1>{escape(title)}</h1>")
    for line in meta:
        out.write(f'<p class="meta">{escape(line)}</p>')
    out.write('<div class="cards">')
    for label, value, css in cards:
        out.write(
            f'<div class="card"><b class="{escape(css)}">{escape(value)}</b>{escape(label)}</div>'
        )
    out.write("</div>")
    for section in sections:
        out.write(f'<section id="{escape(section.id)}"><h2>{escape(section.title)}</h2>')
        if section.intro:
            out.write(f"<p>{escape(section.intro)}</p>")
        if section.figures:
            out.write('<div class="figures">')
            for label, value in section.figures:
                out.write(f"<span>{escape(label)}: <b>{escape(value)}</b></span>")
            out.write("</div>")
        for chart in section.charts:
            out.write(chart)  # built by bot.report.svg, which escapes every text it holds
        for table in section.tables:
            _table(out, table)
        out.write("</section>")
    out.write("</main></body></html>\n")


def _table(out: TextIO, table: Table) -> None:
    out.write(f"<h3>{escape(table.title)}</h3>")
    if table.note:
        out.write(f"<p>{escape(table.note)}</p>")
    out.write(f'<div class="scroll"><table data-table="{escape(table.name)}"><thead><tr>')
    for header in table.headers:
        out.write(f"<th>{escape(header)}</th>")
    out.write("</tr></thead><tbody>")
    empty = True
    for row in table.rows():
        empty = False
        out.write("<tr>")
        for cell in row:
            css = ' class="n"' if isinstance(cell, int | float) else ""
            out.write(f"<td{css}>{escape('' if cell is None else str(cell))}</td>")
        out.write("</tr>")
    if empty:
        out.write(f'<tr><td colspan="{len(table.headers)}">none</td></tr>')
    out.write(f'</tbody></table></div><p class="csv">CSV: {escape(table.name)}.csv</p>')
