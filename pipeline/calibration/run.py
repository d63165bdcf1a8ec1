"""Run the pipeline on random scenarios (one folder each) and collect the report's numbers with the truth."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import yaml

from ..core.aoi import resolve_aois
from ..core.atomic import write_json_atomic, write_text_atomic
from ..core.claims import resolve_claim
from ..core.contracts import SENSORS
from ..core.options import RunOptions
from ..simulation.families import draw_scenario
from ..simulation.sample import generate_sample
from ..simulation.scenario import load_scenario

log = logging.getLogger(__name__)
CLAIM = "us-nsc-2023-10-13"
RESULT = "result.json"


def scenario_dir(root: Path, seed: int) -> Path:
    return Path(root) / f"calibration-{seed:04d}"


def run_scenario(seed: int, root: Path, keep_tiles: bool = False) -> dict:
    """sample -> fetch -> detect -> report for one seed; returns (and stores) the result record.

    Detections stay in the scenario's folder, so a changed report only reruns the report stage
    (every stage is incremental). Tiles are removed afterwards unless ``keep_tiles``.
    """
    from ..detect import run_detect
    from ..fetch import FetchSettings, run_fetch
    from ..report import run_report

    spec, truth = draw_scenario(seed)
    d = scenario_dir(root, seed)
    d.mkdir(parents=True, exist_ok=True)
    text = "# SIMULATED calibration scenario (pipeline/simulation/families.py)\n" + yaml.safe_dump(spec, sort_keys=False)
    path = d / "scenario.yaml"
    if not path.exists() or path.read_text() != text:
        write_text_atomic(path, text)
    sc = load_scenario(path)
    opts = RunOptions(aois=resolve_aois(list(sc.aois)), start=sc.start, end=sc.end, sensors=SENSORS,
                      data_dir=d / "data", out_dir=d, source="local")
    if not (d / "detections").is_dir() or not any((d / "detections").rglob("*.geojson")):
        catalog = generate_sample(path, d / "sample")
        run_fetch(opts, FetchSettings(catalog=catalog, max_cloud=100.0))
        run_detect(opts)
        if not keep_tiles:
            shutil.rmtree(d / "data", ignore_errors=True)
            shutil.rmtree(d / "sample" / "items", ignore_errors=True)
    run_report(opts, resolve_claim(CLAIM))
    summary = json.loads((d / "report" / "summary.json").read_text())
    record = {"seed": seed, "scenario": spec["name"], "description": spec["description"], "truth": truth.as_dict(),
              "verdict": {k: summary["verdict"][k] for k in ("activity", "quantity")},
              "perfect_detector": perfect_detector(d, resolve_claim(CLAIM)),
              "inference": summary["inference"], "claimed_teu": summary.get("claimed_teu")}
    write_json_atomic(d / RESULT, record)
    return record


def perfect_detector(d: Path, claim) -> dict:
    """The verdicts a perfect vessel detector would give on this scenario's images.

    The usable dates, their clear fractions and the yard measurements stay those of the run; only
    the count of large vessels at berth on each usable date is replaced by the simulated truth,
    found wherever the image is clear (detection probability 1 times the clear fraction, no false
    alarm). What remains undecided then is undecided by the
    observation schedule and the model, not by the detectors: a bound on decisiveness.
    """
    from dataclasses import replace

    from ..report.analysis.params import AnalysisParams
    from ..report.analysis.shuttle import infer_shuttle, observation_model
    from ..report.analysis.verdict import claimed_teu, verdict
    from ..report.stage import load_observations

    p = AnalysisParams()
    observations, _, _ = load_observations(sorted((d / "detections").glob("*/*.geojson")))
    found = {}
    for o in observations:
        truth = json.loads((d / "sample" / "truth" / o.aoi / f"{o.date.isoformat()}.geojson").read_text())
        found[o.aoi, o.date] = int(truth["large_vessels_at_berth"])
    om = replace(observation_model(p), p_detect={s: 1.0 for s in SENSORS}, false_alarms_per_date=(1e-3,))
    inf = infer_shuttle(claim, observations, [], claimed_teu(claim, p), p, om=om, found=found)
    v = verdict(claim, observations, [], {}, p, inference=inf)
    w = inf["window"]
    return {"activity": v.activity, "quantity": v.quantity, "p_any_voyage": w["p_any_voyage"],
            "voyages": w["voyages"]["interval"]}


def run_calibration(seeds, root: Path, keep_tiles: bool = False) -> list[dict]:
    """Run every seed (skipping none: each stage is incremental); returns the result records."""
    out = []
    for seed in seeds:
        log.info("calibration scenario %d", seed)
        out.append(run_scenario(int(seed), Path(root), keep_tiles))
    return out


def calibrate(seeds, root: Path, keep_tiles: bool = False) -> dict:
    """Run the seeds and write ``calibration.md``, ``calibration.json`` and ``calibration.png`` in ``root``."""
    from .score import score_results, write_outputs

    records = run_calibration(seeds, root, keep_tiles)
    scored = score_results(records)
    write_outputs(scored, Path(root))
    return scored["summary"]
