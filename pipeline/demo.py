"""`berthwatch demo`: the whole pipeline, offline, on the embedded SIMULATED sample.

sample (cached) -> fetch --source local -> detect -> report, all under one
output folder::

    <out>/sample/    the simulated static STAC catalog + truth (regenerated only when
                     the scenario file or the generator version changes)
    <out>/data/      tiles fetched from it (tile contract)
    <out>/detections/, <out>/timeseries.csv, <out>/report/

Every stage is incremental, so a second run only checks that all is up to date.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from .core.aoi import resolve_aois
from .core.claims import resolve_claim
from .core.contracts import SENSORS
from .core.options import RunOptions
from .simulation.sample import CATALOG_FILE, GENERATOR_VERSION, generate_sample
from .simulation.scenario import resolve_scenario

log = logging.getLogger("berthwatch.demo")
DEMO_CLAIM = "us-nsc-2023-10-13"
KEY_FILE = Path(".berthwatch") / "sample-key.json"


def _banner(text: str) -> None:
    Console(stderr=True).print(Panel(text, title="SIMULATED DATA", border_style="bold red", expand=False))


def sample_key(scenario) -> dict:
    """What the cached sample depends on: the scenario file's bytes and the generator version."""
    return {"scenario": scenario.name, "scenario_sha256": scenario.sha256, "generator_version": GENERATOR_VERSION}


def ensure_sample(scenario, sample_dir: Path) -> Path:
    """The sample's catalog.json, generated unless a matching one is cached in ``sample_dir``."""
    catalog = sample_dir / CATALOG_FILE
    key_path = sample_dir / KEY_FILE
    want = sample_key(scenario)
    try:
        cached = json.loads(key_path.read_text()) if catalog.exists() else None
    except (OSError, json.JSONDecodeError):
        cached = None
    if cached == want:
        log.info("simulated sample up to date: %s", catalog)
        return catalog
    log.info("generating the simulated sample (scenario %s) in %s", scenario.name, sample_dir)
    key_path.unlink(missing_ok=True)
    from .core.atomic import remove_stale_temps

    remove_stale_temps(sample_dir)  # an interrupted generation's temporary files
    catalog = generate_sample(scenario.path, sample_dir)
    from .core.atomic import write_json_atomic

    write_json_atomic(key_path, want)
    return catalog


def run_demo(scenario: Path | str | None, out_dir: Path) -> Path:
    """Generate (or reuse) the simulated sample, fetch, detect and report; return the report's index.html."""
    from .fetch import FetchSettings, run_fetch
    from .detect import run_detect
    from .report import run_report

    sc = resolve_scenario(scenario)
    out_dir = Path(out_dir)
    notice = (f"berthwatch demo: scenario '{sc.name}' ({sc.start} to {sc.end}, {', '.join(sc.aois)}).\n"
              "The imagery is SIMULATED from a scenario file that reconstructs public reporting;\n"
              "it is not Sentinel data and the report made from it is not evidence.")
    _banner(notice)
    catalog = ensure_sample(sc, out_dir / "sample")
    opts = RunOptions(aois=resolve_aois(list(sc.aois)), start=sc.start, end=sc.end, sensors=SENSORS,
                      data_dir=out_dir / "data", out_dir=out_dir, source="local")
    code = run_fetch(opts, FetchSettings(catalog=catalog, max_cloud=100.0))
    code = run_detect(opts) or code
    if code:
        log.warning("some tiles or dates failed (see above); the report covers the rest")
    report = run_report(opts, resolve_claim(DEMO_CLAIM))
    _banner(f"Report on SIMULATED data: {report}")
    return report
