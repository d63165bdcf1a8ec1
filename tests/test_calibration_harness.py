"""Calibration harness: random scenario families, scoring, and a small fixed subset end to end.

The full run (80 scenarios, ~1-2 min each) is ``make calibrate``; here two radar-only scenarios with
few acquisitions go through sample -> fetch -> detect -> report and are scored.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from berthwatch.pipeline.calibration.score import claim_truth, contradiction, score_results
from berthwatch.pipeline.simulation.families import WINDOW, draw_scenario
from berthwatch.pipeline.simulation.scenario import load_scenario


def test_families_give_valid_scenarios_with_their_truth(tmp_path):
    placements = set()
    for seed in range(40):
        spec, truth = draw_scenario(seed)
        assert draw_scenario(seed) == (spec, truth)  # the seed alone decides
        path = tmp_path / f"{seed}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        sc = load_scenario(path)  # valid: berths free, yards within capacity
        shuttle = [c for c in sc.port_calls if c.vessel.startswith("shuttle") and c.aoi == "rajin"]
        in_window = [c for c in shuttle if WINDOW[0] <= c.depart <= WINDOW[1]]
        assert truth.voyages_in_window == len(in_window) and truth.voyages_total == len(shuttle)
        assert truth.teu_in_window == pytest.approx(sum(c.deck_teu_out for c in in_window))
        assert all(50 <= c.deck_teu_out <= 400 for c in shuttle) and len(shuttle) <= 6
        placements.add(truth.placement)
    assert placements == {"inside", "outside", "straddle"}


def _record(voyages: int, teu: float, activity: str, quantity: str, interval=(0, 3), teu_interval=(0, 900)):
    return {"seed": 0, "truth": {"voyages_in_window": voyages, "teu_in_window": teu, "placement": "inside",
                                 "s2_every": 5, "s1_every": None, "cloud_probability": 0.2},
            "verdict": {"activity": activity, "quantity": quantity}, "claimed_teu": [1000.0, None],
            "inference": {"usable_looks_in_window": {"rajin": 5, "dunai": 4}, "window": {
                "voyages": {"median": 1, "interval": list(interval)}, "teu": {"median": 300, "interval": list(teu_interval)},
                "p_any_voyage": 0.9, "p_claim_quantity_met": 0.1, "bayes_factor_any_voyage": 12.0,
                "bayes_factor_claim_quantity": 0.2}}}


def test_scoring_counts_contradictions_decisions_and_coverage():
    assert claim_truth(_record(2, 1200, "x", "x")) == (True, True)
    assert claim_truth(_record(0, 0, "x", "x")) == (False, False)
    assert contradiction("consistent", False) and contradiction("inconsistent", True)
    assert not contradiction("insufficient_data", True) and not contradiction("consistent", True)
    scored = score_results([
        _record(2, 500, "consistent", "inconsistent"),                  # right on both
        _record(0, 0, "consistent", "insufficient_data", (1, 3)),       # activity contradicted, interval misses 0
        _record(3, 1100, "insufficient_data", "inconsistent", (0, 3), (0, 900)),  # quantity contradicted
    ])["summary"]
    assert scored["contradictions_activity"] == 1 and scored["contradictions_quantity"] == 1
    assert scored["decisive_activity"] == pytest.approx(2 / 3) and scored["decisive_quantity"] == pytest.approx(2 / 3)
    assert scored["coverage_voyages"] == pytest.approx(2 / 3) and scored["coverage_teu"] == pytest.approx(2 / 3)
    # the sweep re-decides from the stored numbers: P(any) 0.9 at a Bayes factor of 12 is decided at 3 and 10 only
    sweep = {t["bayes_factor"]: t for t in scored["threshold_sweep"]}
    assert sweep[3.0]["decisive_activity"] == sweep[10.0]["decisive_activity"] == 1.0
    assert sweep[20.0]["decisive_activity"] == sweep[100.0]["decisive_activity"] == 0.0
    assert sweep[10.0]["contradictions_activity"] == 1  # the record without a voyage in the window


@pytest.mark.parametrize("seed", [27])
def test_calibrate_runs_the_pipeline_and_scores_a_fixed_subset(tmp_path, seed):
    """Seed 27: radar-only (Sentinel-1 every 12 days), five voyages all outside the window."""
    from berthwatch.pipeline.calibration.run import calibrate

    summary = calibrate([seed], tmp_path)
    assert summary["scenarios"] == 1
    assert summary["contradictions_activity"] == 0 and summary["contradictions_quantity"] == 0
    scored = json.loads((tmp_path / "calibration.json").read_text())
    (row,) = scored["rows"]
    assert row["voyages_true"] == 0 and row["activity"] != "consistent"
    # the perfect-detector bound runs on the same scenario and never claims voyages that did not happen
    assert row["perfect_activity"] in ("inconsistent", "insufficient_data")
    assert scored["summary"]["perfect_contradictions_activity"] == 0
    assert (tmp_path / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "contradictions" in (tmp_path / "calibration.md").read_text()
    # the scenario's detections stay; its tiles do not
    assert any((tmp_path / f"calibration-{seed:04d}" / "detections").rglob("*.geojson"))
    assert not (tmp_path / f"calibration-{seed:04d}" / "data").exists()
