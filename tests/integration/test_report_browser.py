"""The report opens in a real browser (Debian's chromium, headless) with no console error
and no failed load, and every chart draws each of its data points."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from bot.devtools.audit_seed import seed_audit
from bot.devtools.chromium import headless_page
from bot.report.build import ReportRequest, make_report
from bot.store.grants import GrantStore

DAY = 86400.0
#: In the page: per chart, the data points it says it has and those drawn with a size.
CHECK_CHARTS = """(() => Array.from(document.querySelectorAll('svg.chart')).map(svg => {
  const points = Array.from(svg.querySelectorAll('.pt'));
  const drawn = points.filter(p => {
    const box = p.getBBox();
    return box.width > 0 && box.height > 0;
  });
  return {chart: svg.dataset.chart, expected: Number(svg.dataset.points),
          present: points.length, drawn: drawn.length};
}))()"""


@pytest.mark.needs("chromium")
async def test_report_renders_every_chart_in_chromium(
    store: GrantStore, redis_url: str, tmp_path: Path
) -> None:
    """A month of seeded history: the page loads clean, each of the five charts drew all
    its points, and a screenshot is saved."""
    now = time.time()
    sync = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        seed_audit(sync, store.keys, entries=6000, start=now - 40 * DAY, end=now)
    finally:
        sync.close()
    out = tmp_path / "report.html"
    await make_report(
        store, ReportRequest(since=now - 30 * DAY, until=now, now=now, out=out), progress=None
    )
    html = out.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<script" not in html

    async with headless_page() as page:
        await page.open(out.resolve().as_uri())
        charts = await page.evaluate(CHECK_CHARTS)
        shot = tmp_path / "report.png"
        await page.screenshot(shot, max_height=2600)
    assert not page.problems.any, page.problems
    names = {c["chart"] for c in charts}
    assert names == {"standing", "daily", "decisions", "lateness", "episodes"}
    for chart in charts:
        assert chart["expected"] > 0, chart
        assert chart["present"] == chart["expected"] == chart["drawn"], chart
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@pytest.mark.needs("chromium")
async def test_a_failed_load_is_reported(tmp_path: Path) -> None:
    """The harness itself notices what the report test must fail on: a console error and a
    resource that does not load."""
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        '<!DOCTYPE html><html><body><img src="missing.png">'
        "<script>console.error('boom')</script></body></html>"
    )
    async with headless_page() as page:
        await page.open(page_file.resolve().as_uri())
        deadline = time.monotonic() + 10
        while not (page.problems.console_errors and page.problems.failed_loads):
            assert time.monotonic() < deadline, page.problems
            await page.evaluate("new Promise(r => setTimeout(r, 20))")
