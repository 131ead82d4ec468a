"""The dashboard in a real browser: headless Chromium (Debian's package, driven by Playwright
without a browser download) opens the file, draws every chart, fetches nothing and logs no
error; the screenshot it takes is the README's (PTX_DASHBOARD_SCREENSHOT says where to keep
it). Without a browser the test skips, saying why; where CI=true it fails instead."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from projects import make_project, ptx, task

if TYPE_CHECKING:
    from collections.abc import Sequence

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LOAD_TIMEOUT_MS = 60_000  # only guards against a hang
DRAWN = 500  # coloured pixels of a canvas that drew a chart's data (axes and grid are grey)
CHARTS = 9  # 3 runs over time, the Gantt, the held starts, the trend and 4 rankings
# Every canvas in the page, through the shadow roots Bokeh draws in, with how many of its
# pixels are coloured (not white, grey or black): a chart that drew its data has many.
CANVASES = """() => {
  const found = [];
  const walk = (root) => root.querySelectorAll('*').forEach((node) => {
    if (node.tagName === 'CANVAS') found.push(node);
    if (node.shadowRoot) walk(node.shadowRoot);
  });
  walk(document);
  return found.map((canvas) => {
    const context = canvas.getContext('2d');
    if (!context || !canvas.width || !canvas.height) return 0;
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let coloured = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured += 1;
    }
    return coloured;
  });
}"""
# The rows of data behind each glyph Bokeh drew, by glyph type.
GLYPHS = """() => [...Bokeh.documents[0].all_models]
  .filter((model) => model.glyph !== undefined && model.data_source !== undefined)
  .map((model) => [model.glyph.type, model.data_source.get_length()])"""
COST = """printf '{"cost_usd": %s, "tokens": {"input": %d, "output": %d}}' > "$PTX_RESULT" """
FLAKY = 'if [ "$PTX_ATTEMPT" = 1 ] && [ ! -f flaked ]; then touch flaked; exit 1; fi; '


def browser() -> Any:
    """Playwright's sync API when the system's Chromium and Playwright are both there."""
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"no {CHROMIUM} (apt-get install chromium)")
    sync_api: Any = None
    try:
        from playwright import sync_api  # noqa: PLC0415 - optional: a dev dependency
    except ImportError:
        missing.append("no playwright (pip install playwright)")
    if missing:
        reason = "the browser test needs " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI must run it (.ci/run installs the browser)")
        pytest.skip(reason)
    return sync_api


def project_with_history(root: Path) -> Path:
    """A project whose journal has a few runs: costs, a flaky task, a failure, a held start."""
    tasks = [
        task(1, "sleep 0.2; " + COST % (0.12, 2400, 800), title="Set up the schema"),
        task(2, FLAKY + "sleep 0.3; " + COST % (0.31, 5100, 1900), 1, title="Write the parser"),
        task(3, "sleep 0.4; " + COST % (0.22, 3000, 1200), 1, title="Write the exporter"),
        task(4, "sleep 0.2", 2, 3, title="Integration tests", ptx_resources={"db": 1}),
        task(5, "sleep 0.3", 1, title="Load tests", ptx_resources={"db": 1}),
        task(6, "sleep 0.1; test -f flaked", 4, 5, title="Release notes </script>"),
    ]
    # The machine's guard would hold starts on a busy test machine: the page shows slots.
    guard = {"max_resource_utilization": 1.0}
    limits = {"memory_per_task": 1}
    make_project(
        root, tasks, resources={"db": 1}, retries=1, safety_thresholds=guard, resource_limits=limits
    )
    for _ in range(3):
        ran = ptx(root, "run", "-j", "3")
        assert ran.returncode in {0, 1}, ran.stderr
    return root


def opened(
    sync_api: Any,
    page_file: Path,
    screenshot: Path,
    *,
    drawn: int = 0,
) -> dict[str, Any]:
    """Open the file in headless Chromium with a fresh profile, wait until `drawn` canvases
    hold a chart (Bokeh paints in animation frames, after its views exist); what the page did."""
    seen: dict[str, list[Any]] = {"requests": [], "console": [], "errors": [], "dialogs": []}
    with sync_api.sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=list(FLAGS),
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("request", lambda request: seen["requests"].append(request.url))
            page.on("console", lambda message: seen["console"].append((message.type, message.text)))
            page.on("pageerror", lambda error: seen["errors"].append(str(error)))

            def on_dialog(dialog: Any) -> None:
                seen["dialogs"].append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.goto(page_file.as_uri())
            page.wait_for_function(
                "() => window.Bokeh && Object.keys(Bokeh.index).length > 0",
                timeout=LOAD_TIMEOUT_MS,
            )
            page.wait_for_function(
                f"() => ({CANVASES})().filter((count) => count > {DRAWN}).length >= {drawn}",
                timeout=LOAD_TIMEOUT_MS,
            )
            page.wait_for_load_state("networkidle", timeout=LOAD_TIMEOUT_MS)
            seen["glyphs"] = page.evaluate(GLYPHS)
            seen["canvases"] = page.evaluate(CANVASES)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            context.close()
    return seen


def keep(screenshot: Path) -> None:
    wanted = os.environ.get("PTX_DASHBOARD_SCREENSHOT")
    if wanted:
        shutil.copy(screenshot, wanted)


# Chrome's advice to the test's own pixel counting (getImageData, polled), not the page's.
OWN_READBACK = "Canvas2D: Multiple readback operations"


def errors(console: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The page's console errors and warnings."""
    return [
        (kind, text)
        for kind, text in console
        if kind in {"error", "warning"} and not text.startswith(OWN_READBACK)
    ]


@pytest.mark.slow
def test_the_dashboard_renders_in_chromium_with_no_network(tmp_path: Path) -> None:
    sync_api = browser()
    root = project_with_history(tmp_path / "shop")
    first = json.loads(ptx(root, "runs", "--json").stdout)[-1]["run_id"]  # where 2 was flaky
    made = ptx(root, "dashboard", "--run", first)
    assert made.returncode == 0, made.stderr
    page_file = root / ".ptx" / "dashboard.html"
    seen = opened(sync_api, page_file, tmp_path / "dashboard.png", drawn=CHARTS)
    assert seen["requests"] == [page_file.as_uri()]  # the page itself, then nothing
    assert (seen["errors"], errors(seen["console"]), seen["dialogs"]) == ([], [], [])
    glyphs = seen["glyphs"]
    kinds = {kind for kind, _ in glyphs}
    assert {"Line", "Scatter", "HBar", "MultiLine"} <= kinds
    assert all(rows > 0 for _, rows in glyphs), glyphs  # every glyph drew some data
    drawn = [count for count in seen["canvases"] if count > DRAWN]
    assert len(drawn) >= CHARTS, seen["canvases"]
    assert (tmp_path / "dashboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep(tmp_path / "dashboard.png")


@pytest.mark.slow
def test_an_empty_dashboard_opens_cleanly(tmp_path: Path) -> None:
    sync_api = browser()
    root = make_project(tmp_path, [task(1, "true")])
    assert ptx(root, "dashboard").returncode == 0
    page_file = root / ".ptx" / "dashboard.html"
    seen = opened(sync_api, page_file, tmp_path / "empty.png")
    assert seen["requests"] == [page_file.as_uri()]
    assert (seen["errors"], errors(seen["console"])) == ([], [])
    assert seen["glyphs"] == []


def test_without_a_browser_it_skips_saying_why_but_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run it"):
        browser()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"needs no /nonexistent/chromium \(apt-get"):
        browser()
