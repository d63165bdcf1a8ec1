"""Regression floor of the SAR detector on the real OpenSARShip chips."""

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "opensarship"


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    if not (DATA.is_dir() and any(DATA.glob("*/Patch_Cal"))):
        pytest.skip(f"OpenSARShip data not found at {DATA}")
    from berthwatch.pipeline.validation.opensarship import validate_opensarship

    out = tmp_path_factory.mktemp("opensarship")
    m = validate_opensarship(DATA, out)
    m["_out"] = out
    return m


def test_outputs_written(metrics):
    out = metrics["_out"]
    on_disk = json.loads((out / "metrics.json").read_text())
    assert set(on_disk) == {"overall", "scenes"}
    assert len(on_disk["scenes"]) == 4
    assert len(list(out.glob("*.png"))) == 4
    for key in ("precision", "recall", "f1", "tp", "fp", "fn", "length_mae_m", "width_mae_m"):
        assert key in on_disk["overall"]


def test_recall_and_size_floor(metrics):
    # measured 2026-11: recall 0.959 (117/122), length MAE 19.7 m, width MAE 8.5 m
    overall = metrics["overall"]
    assert overall["tp"] + overall["fn"] == 122
    assert overall["recall"] >= 0.95
    assert overall["length_mae_m"] <= 22.0
    assert overall["width_mae_m"] <= 11.0
    for scene in metrics["scenes"].values():
        assert scene["recall"] >= 0.9


def test_metrics_table(metrics):
    from berthwatch.pipeline.validation.opensarship import format_metrics_table

    table = format_metrics_table(metrics)
    assert "overall" in table and len(table.splitlines()) == 2 + 4 + 1
