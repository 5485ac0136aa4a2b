"""The HTML report in a real browser: headless Chromium loads it, and its matrix, a failure card,
the accuracy plot and the Speed section are in the DOM it built; a 1280 × 900 screenshot is taken.

Skipped, with the reason, when Chromium is not installed — unless the environment variable CI is
set: CI installs it (``apt-get install -y chromium``), so there a missing browser is a failure.
Set CONVSPEC_SCREENSHOT_DIR to keep the screenshot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_bench import tiny_layers
from test_reports import small_real_run, synthetic_results

from convspec.bench import run_bench
from convspec.conformance import render
from convspec.conformance.results import Results

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    reason = "headless Chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install it")
    pytest.skip(reason)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a fresh profile per run
    command = [_browser(), *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


class _Elements(HTMLParser):
    """Counts elements by class and tag in the DOM the browser serialised."""

    def __init__(self) -> None:
        super().__init__()
        self.classes: dict[str, int] = {}
        self.tags: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name in (dict(attrs).get("class") or "").split():
            self.classes[name] = self.classes.get(name, 0) + 1


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A real run (naive backend) merged with a synthetic failing backend, and a real bench run of
    two tiny layers (its Speed section), as one HTML file."""
    results = Results.merge([small_real_run(), synthetic_results()])
    bench = json.loads(run_bench(["im2col", "naive"], layers=tiny_layers()[:2], repeat=1, warmup=0,
                                 baseline="naive").dumps())
    path = tmp_path_factory.mktemp("report") / "report.html"
    render.write_report(results, path, [bench])
    return path


def test_report_dom_in_chromium_has_matrix_failure_card_and_accuracy_plot(report, tmp_path):
    done = _chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = _Elements()
    dom.feed(done.stdout)
    assert dom.classes.get("matrix") == 1, "the feature × backend matrix"
    assert dom.classes.get("cell", 0) > 10
    assert dom.classes.get("failure", 0) >= 1, "a failure card"
    assert dom.classes.get("accuracy-plot") == 3, "one accuracy plot per backend"
    assert dom.tags.get("rect", 0) > 20, "bars of the plots"
    assert "MAXPOOL-TIE-1" in done.stdout and "reproduce (shell)" in done.stdout
    speed = done.stdout.split('<section id="speed">')[1].split("</section>")[0]
    assert speed.count('class="bar-cell"') >= 8 and "conv2d g2" in speed, "the Speed section with its bars"


def test_report_screenshot_on_a_laptop_screen(report, tmp_path):
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", report.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a rendered page, not a blank one
    keep = os.environ.get("CONVSPEC_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
        shutil.copy(report, Path(keep) / "report.html")
