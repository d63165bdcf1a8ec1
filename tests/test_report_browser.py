"""The HTML report in a real browser (headless Debian chromium): renders, no console errors.

Skips only when /usr/bin/chromium is absent and the environment variable CI is
not set; in CI a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from berthwatch.pipeline.core.aoi import resolve_aois
from berthwatch.pipeline.core.claims import resolve_claim
from berthwatch.pipeline.core.options import RunOptions
from berthwatch.pipeline.report import run_report

from scenario_detections import in_window_scenario, write_scenario

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
#: Chromium prints page console messages as "INFO:CONSOLE(...)" lines with --enable-logging.
CONSOLE = re.compile(r"CONSOLE.*|Uncaught.*", re.IGNORECASE)


def chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail("/usr/bin/chromium is missing in CI (apt-get install chromium)")
    pytest.skip("/usr/bin/chromium not installed (apt-get install chromium); browser test skipped")


def run_chromium(tmp_path: Path, url: str, *extra: str) -> tuple[str, str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [str(chromium()), *FLAGS, f"--user-data-dir={profile}", *extra, url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    shutil.rmtree(profile, ignore_errors=True)
    return proc.stdout, proc.stderr


def console_messages(stderr: str) -> list[str]:
    return [m.group(0) for m in CONSOLE.finditer(stderr)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    write_scenario(in_window_scenario(), out)
    return run_report(RunOptions(aois=resolve_aois(["rajin", "dunai"]), out_dir=out),
                      resolve_claim("us-nsc-2023-10-13"))


def test_console_capture_sees_errors(tmp_path):
    """The console check below can fail: a page with an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>x</p><script>console.error('boom'); missingFn();</script></body></html>")
    _, err = run_chromium(tmp_path, bad.as_uri(), "--dump-dom")
    msgs = console_messages(err)
    assert any("boom" in m for m in msgs) and any("Uncaught" in m for m in msgs)


def test_report_renders_without_console_errors(report, tmp_path):
    dom, err = run_chromium(tmp_path, report.as_uri(), "--dump-dom", "--virtual-time-budget=5000")
    assert not console_messages(err), console_messages(err)
    assert 'data-map-ready="1"' in dom  # the inline Leaflet script ran to the end
    assert "leaflet-container" in dom and "leaflet-interactive" in dom  # map with drawn GeoJSON
    assert "Verdict" in dom and 'class="badge consistent"' in dom
    assert dom.count('src="data:image/png;base64,') == 5  # + the evidence per date (#15)
    assert "SIMULATED INPUT" in dom


def test_report_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    _, err = run_chromium(tmp_path, report.as_uri(), f"--screenshot={shot}", "--window-size=1200,2400",
                          "--virtual-time-budget=5000")
    assert shot.exists() and shot.stat().st_size > 50_000, err[-2000:]
    assert not console_messages(err)
