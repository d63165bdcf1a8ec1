"""Analysts' parameter files (--params) for the detect and report stages."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from berthwatch.pipeline.core.manifest import params_hash
from berthwatch.pipeline.detect.params import detector_params
from berthwatch.pipeline.cli import app
from berthwatch.pipeline.core.errors import UsageError
from berthwatch.pipeline.params import load_params_file

from scenario_detections import in_window_scenario, write_scenario


def _write(tmp_path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_report_uses_the_file_and_records_it(tmp_path):
    write_scenario(in_window_scenario(), tmp_path)
    out = ["--claim", "us-nsc-2023-10-13", "--aoi", "rajin,dunai", "--out-dir", str(tmp_path)]
    assert CliRunner().invoke(app, ["report", *out]).exit_code == 0
    default = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert default["verdict"]["activity"] == "consistent"

    # No evidence is ever that strong: with this threshold nothing is decided.
    params = _write(tmp_path, "report:\n  decide_bayes_factor: 1000000000000\n  teu_per_container: [1, 1.5]\n")
    res = CliRunner().invoke(app, ["report", *out, "--params", str(params)])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["params"]["decide_bayes_factor"] == 1e12
    assert summary["params"]["teu_per_container"] == [1.0, 1.5]
    assert summary["verdict"]["activity"] != "consistent"


def test_detector_overrides_merge_into_the_defaults(tmp_path):
    path = _write(tmp_path, "detect:\n  optical: {min_probability: 0.3}\n  stacks: {teu_params: {packing: 0.7}}\n")
    params = detector_params(load_params_file(path)["detector_params"])
    assert params["optical"]["min_probability"] == 0.3
    defaults = detector_params()
    assert params["stacks"]["teu_params"] == {**defaults["stacks"]["teu_params"], "packing": 0.7}
    assert params_hash(params) != params_hash(defaults)


@pytest.mark.parametrize("text, message", [
    ("reprot:\n  min_clear: 0.5\n", "unknown section(s) reprot"),
    ("report:\n  min_clearness: 0.5\n", "unknown report parameter(s) min_clearness"),
    ("report:\n  min_clear: high\n", "min_clear must be a number"),
    ("report:\n  transit_days: [1]\n", "transit_days must be a list of 2 numbers"),
    ("detect:\n  optical: 0.3\n", "'detect' must map steps"),
    ("[1, 2]\n", "expected a mapping"),
    ("report: {min_clear: [\n", "not valid YAML"),
])
def test_bad_files_are_refused_with_one_line_naming_the_file(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(UsageError) as exc:
        load_params_file(path)
    assert message in str(exc.value) and str(path) in str(exc.value)


@pytest.mark.parametrize("overrides, message", [
    ({"optics": {"min_probability": 0.3}}, "unknown step 'optics'"),
    ({"optical": {"min_probability": True}}, "optical.min_probability must be like its default"),
    ({"stacks": {"haze_correction": 1}}, "stacks.haze_correction must be like its default"),
    ({"stacks": {"teu_params": {"stack_height_mean": "three"}}}, "stacks.teu_params must be like its default"),
    ({"stacks": {"teu_params": {"tiers": 3}}}, "stacks.teu_params must be like its default"),
])
def test_detector_overrides_of_the_wrong_kind_are_refused(overrides, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        detector_params(overrides)


def test_cli_detect_refuses_a_bad_file_before_writing(tmp_path):
    (tmp_path / "data" / "tiles").mkdir(parents=True)
    params = _write(tmp_path, "detect:\n  optical: {min_lenght_m: 20}\n")
    res = CliRunner().invoke(app, ["detect", "--aoi", "rajin", "--data-dir", str(tmp_path / "data"),
                                   "--out-dir", str(tmp_path / "out"), "--params", str(params)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "min_lenght_m" in lines[0]
    assert not (tmp_path / "out" / "detections").exists()
