"""Regression floor of the optical detector on real sen2ships port scenes."""

import json
from pathlib import Path

import numpy as np
import pytest

from berthwatch.detectors import optical
from berthwatch.pipeline.validation.sen2ships import (
    CROSS_VALIDATION,
    cross_validate_sen2ships,
    fit_boosted_trees,
    format_metrics_table,
    match,
    validate_sen2ships,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "sen2ships"
# Three ports keep the test to ~20 s; the CLI runs all eight.
PORTS = ("algiers", "durban", "gdynia")


def test_match_is_one_to_one_within_grown_box():
    boxes = np.array([[10, 10, 4, 10], [30, 30, 4, 4]], float)
    dets = np.array([[12, 15], [12.5, 16], [34.5, 32], [80, 80]], float)  # (col, row)
    pairs = match(dets, boxes, margin_px=1.0)
    assert sorted(j for _, j in pairs) == [0, 1]
    assert len(pairs) == 2 and all(i != 3 for i, _ in pairs)
    assert match(np.array([[36.1, 32]]), boxes, margin_px=1.0) == []


def test_read_port_treats_a_zero_in_one_band_as_data(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    from berthwatch.pipeline.validation.sen2ships import read_port

    dn = {b: np.full((4, 5), 2000, np.uint16) for b in ("B02", "B03", "B04", "B08", "B11")}
    dn["B08"][1, 1] = 0  # dark water clipped to 0 in NIR: a valid observation
    for b in dn:
        dn[b][3, 4] = 0  # outside the swath: 0 in every band
    for b, a in dn.items():
        with rasterio.open(tmp_path / f"{b}.tif", "w", driver="GTiff", width=5, height=4, count=1, dtype="uint16",
                           crs="EPSG:3857", transform=from_origin(0, 4_000_000, 10, 10)) as ds:
            ds.write(a, 1)
    (tmp_path / "vessels.json").write_text(json.dumps({"annotations": []}))
    bands, _, pixel_size, _, _ = read_port(tmp_path)
    assert bands["B08"][1, 1] == 0.0 and np.isfinite(bands["B02"][1, 1])
    assert all(np.isnan(v[3, 4]) for v in bands.values())
    assert sum(int(np.isnan(v).sum()) for v in bands.values()) == 5
    assert abs(bands["B02"][0, 0] - 2000 / 65535) < 1e-6
    assert 8.2 < pixel_size < 8.4  # 10 Mercator metres are 10 cos(33.8 deg) = 8.3 m on the ground there


def test_boosted_trees_learn_an_interaction_and_match_detector_format():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (600, len(optical.FEATURE_NAMES)))
    # Vessel only when feature 0 AND feature 3 are high: needs depth 2.
    y = ((X[:, 0] > 0.5) & (X[:, 3] > 0.5)).astype(int)
    base, trees = fit_boosted_trees(X, y, rounds=20)
    assert trees.shape == (20, 10)
    prob = optical.vessel_probability(X, trees, base)
    assert ((prob >= 0.5) == y.astype(bool)).mean() > 0.95


@pytest.mark.skipif(not DATA.is_dir(), reason=f"sen2ships data not found at {DATA} (lay shared/ beside the clone)")
def test_sen2ships_regression_floor(tmp_path):
    subset = tmp_path / "sen2ships"
    subset.mkdir()
    for port in PORTS:
        (subset / port).symlink_to(DATA / port, target_is_directory=True)
    out = tmp_path / "out"
    metrics = validate_sen2ships(subset, out)
    assert set(metrics["scenes"]) == set(PORTS)
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert all((out / f"{p}.png").stat().st_size > 10_000 for p in PORTS)
    assert not list(out.glob(".*tmp*"))
    overall = metrics["overall"]
    print(format_metrics_table(metrics))
    # Floor at the level measured when written (in-sample on these three
    # ports: P 0.62, R 0.59, F1 0.61; all 8 ports P 0.50 R 0.44 F1 0.47;
    # leave-one-port-out F1 0.31): far below the F1 0.85 target, guards
    # regressions.
    assert overall["precision"] >= 0.6
    assert overall["recall"] >= 0.52
    assert overall["f1"] >= 0.56
    assert metrics["cross_validation"]["f1"] <= overall["f1"]
    # The score's reliability: every reported vessel in one bin, and higher scores are real more often.
    cal = metrics["calibration"]
    assert cal["n"] == overall["tp"] + overall["fp"] == sum(b["n"] for b in cal["bins"])
    seen = [b["observed"] for b in cal["bins"] if b["n"] >= 5]
    assert len(seen) >= 2 and seen[-1] > seen[0] and 0 <= cal["expected_calibration_error"] < 0.3


@pytest.mark.skipif(not DATA.is_dir(), reason=f"sen2ships data not found at {DATA} (lay shared/ beside the clone)")
def test_cross_validation_reproduces_the_documented_table_and_scores():
    result = cross_validate_sen2ships(DATA)
    # The detector's constants are the table fitted on all eight ports.
    assert result["trees"].shape == optical.TREES.shape
    assert np.allclose(result["trees"], optical.TREES, rtol=1e-4, atol=1e-4)
    assert np.allclose(result["feature_centre"], optical.FEATURE_CENTRE, rtol=1e-5)
    assert np.allclose(result["feature_scale"], optical.FEATURE_SCALE, rtol=1e-5)
    assert abs(result["base_log_odds"] - optical.BASE_LOG_ODDS) < 1e-5
    documented = CROSS_VALIDATION
    for key in ("precision", "recall", "f1"):
        assert abs(result["overall"][key] - documented[key]) <= 0.01
    assert abs(result["candidate_recall_bound"] - documented["candidate_recall_bound"]) <= 0.01


@pytest.mark.skipif(not DATA.is_dir(), reason=f"sen2ships data not found at {DATA} (lay shared/ beside the clone)")
def test_cli_cross_validate_measures_the_held_out_scores(tmp_path):
    from typer.testing import CliRunner

    from berthwatch.pipeline.cli import app

    subset = tmp_path / "sen2ships"
    subset.mkdir()
    for port in ("casablanca", "honolulu"):  # the two smallest scenes
        (subset / port).symlink_to(DATA / port, target_is_directory=True)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["validate", "sen2ships", str(subset), "--out", str(out), "--cross-validate"])
    assert result.exit_code == 0, result.output
    assert "leave-one-port-out (measured)" in result.output
    cv = json.loads((out / "metrics.json").read_text())["cross_validation"]
    assert cv["measured"] is True
    n_labels = sum(len(json.loads((DATA / p / "vessels.json").read_text())["annotations"])
                   for p in ("casablanca", "honolulu"))
    # Every label of each held-out port is either found or missed.
    assert cv["tp"] + cv["fn"] == n_labels == 27
    assert set(cv["scenes"]) == {"casablanca", "honolulu"}
