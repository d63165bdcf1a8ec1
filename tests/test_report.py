"""The report stage end to end on constructed detections: files, summary.json, HTML, incrementality."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from berthwatch.pipeline.core.aoi import resolve_aois
from berthwatch.pipeline.core.claims import resolve_claim
from berthwatch.pipeline.cli import app
from berthwatch.pipeline.core.errors import UserError
from berthwatch.pipeline.core.options import RunOptions
from berthwatch.pipeline.report import run_report

from scenario_detections import cloudy_window_scenario, in_window_scenario, write_scenario

STABLE_KEYS = {"claim", "window", "verdict", "voyages", "teu_in_window", "coverage", "activity_rate_ratio",
               "simulated_input"}


@pytest.fixture(scope="module")
def claim():
    return resolve_claim("us-nsc-2023-10-13")


@pytest.fixture(scope="module")
def in_window_report(tmp_path_factory, claim):
    out = tmp_path_factory.mktemp("out")
    write_scenario(in_window_scenario(), out)
    index = run_report(RunOptions(aois=resolve_aois(["rajin", "dunai"]), out_dir=out), claim)
    return out, index


def test_writes_all_outputs(in_window_report):
    out, index = in_window_report
    report = out / "report"
    assert index == report / "index.html"
    for name in ("index.html", "report.md", "summary.json", "timeseries-rajin.png", "timeseries-dunai.png",
                 "voyages.png", "map.png", "evidence.png"):
        assert (report / name).stat().st_size > 0, name
        assert (report / name).read_bytes()[:4] != b"" and not name.startswith(".")
    assert not list(report.glob(".*.tmp*")), "temporary files left behind"
    assert (report / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_json_stable_keys_and_values(in_window_report):
    out, _ = in_window_report
    s = json.loads((out / "report" / "summary.json").read_text())
    assert STABLE_KEYS <= set(s)
    assert s["claim"] == "us-nsc-2023-10-13" and s["window"] == ["2023-09-07", "2023-10-01"]
    assert s["verdict"]["activity"] == "consistent" and s["verdict"]["quantity"] != "inconsistent"  # 1,240 TEU moved
    assert s["verdict"]["reasons"]
    inf = s["inference"]
    for period in ("window", "baseline"):
        b = inf[period]
        assert b["voyages"]["interval"][0] <= b["voyages"]["median"] <= b["voyages"]["interval"][1]
        assert b["teu"]["interval"][0] <= b["teu"]["median"] <= b["teu"]["interval"][1]
        assert 0 <= b["p_any_voyage"] <= 1 and 0 <= b["p_claim_quantity_met"] <= 1
    assert inf["window"]["p_any_voyage"] > 0.9 and inf["baseline"]["p_any_voyage"] < 0.2
    assert inf["capacity_teu"] == 521  # Angara 7,300 dwt / 14 t
    assert s["simulated_input"] is True
    loaded = [v for v in s["voyages"] if v["origin"] == "rajin" and v["destination"] == "dunai"]
    assert len(loaded) == 3
    for v in loaded:
        assert set(v) >= {"origin", "destination", "depart", "arrive", "vessel_length_m", "teu", "confidence"}
        assert v["depart"][0] <= v["depart"][1] <= v["arrive"][1] and len(v["teu"]) == 3
        assert v["teu"][0] <= v["teu"][1] <= v["teu"][2]
    assert s["teu_in_window"]["low"] <= s["teu_in_window"]["estimate"] <= s["teu_in_window"]["high"]
    cov = s["coverage"]["rajin"]["sentinel-2-l2a"]
    assert cov == {"in_window": 12, "usable_in_window": 12, "baseline": 34, "usable_baseline": 34}
    assert s["activity_rate_ratio"]["value"] > 1 and 0 <= s["activity_rate_ratio"]["p_value"] <= 1


def test_html_is_self_contained(in_window_report):
    out, _ = in_window_report
    html = (out / "report" / "index.html").read_text()
    assert "SIMULATED INPUT" in html
    # nothing fetched at view time: no external scripts, styles or images
    assert not re.search(r'<(script|img|link)[^>]+(src|href)="(https?:)?//', html)
    assert "<link" not in html
    assert html.count('src="data:image/png;base64,') == 5  # two time series, voyages, map, evidence
    assert "L.geoJSON" in html and "tileLayer" not in html.split("<script>")[-1]
    assert "cannot show what the containers hold" in html
    md = (out / "report" / "report.md").read_text()
    for png in re.findall(r"\]\(([^)]+\.png)\)", md):
        assert (out / "report" / png).exists()


def test_rerun_is_incremental(tmp_path, claim):
    write_scenario(in_window_scenario(), tmp_path)
    opts = RunOptions(aois=resolve_aois(["rajin", "dunai"]), out_dir=tmp_path)
    index = run_report(opts, claim)
    first = index.stat().st_mtime_ns
    run_report(opts, claim)
    assert index.stat().st_mtime_ns == first  # nothing changed: nothing rewritten
    # a changed detections file makes the report stale
    write_scenario(cloudy_window_scenario(), tmp_path)
    run_report(opts, claim)
    assert index.stat().st_mtime_ns != first
    s = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert s["verdict"]["activity"] == "insufficient_data"


def test_edited_report_code_rerenders(tmp_path, claim, monkeypatch):
    from berthwatch.pipeline.report import stage as report

    write_scenario(in_window_scenario(), tmp_path)
    opts = RunOptions(aois=resolve_aois(["rajin", "dunai"]), out_dir=tmp_path)
    index = run_report(opts, claim)
    first = index.stat().st_mtime_ns
    # A new template or analysis (same detections, same parameters) must not leave the old report.
    monkeypatch.setattr(report, "report_code_digest", lambda: "edited")
    run_report(opts, claim)
    assert index.stat().st_mtime_ns != first


def test_no_detections_is_a_user_error(tmp_path, claim):
    with pytest.raises(UserError, match="no detections"):
        run_report(RunOptions(aois=resolve_aois(["rajin", "dunai"]), out_dir=tmp_path), claim)


def test_cli_report(tmp_path):
    write_scenario(cloudy_window_scenario(), tmp_path)
    res = CliRunner().invoke(app, ["report", "--claim", "us-nsc-2023-10-13", "--aoi", "rajin,dunai",
                                   "--out-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report" / "index.html").exists()
    empty = tmp_path / "empty"
    res = CliRunner().invoke(app, ["report", "--out-dir", str(empty)])
    assert res.exit_code == 1 and "no detections" in res.output


def test_single_scene_dates_are_flagged(tmp_path, claim):
    files = write_scenario(in_window_scenario(), tmp_path)
    flagged = sorted(f for f in files if "/dunai/" in str(f))[:2]
    for f in files:
        fc = json.loads(f.read_text())
        fc["features"][0]["properties"]["water_reference"] = "single-scene" if f in flagged else "time-series"
        f.write_text(json.dumps(fc))
    index = run_report(RunOptions(aois=resolve_aois(["rajin", "dunai"]), out_dir=tmp_path), claim)
    s = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert s["single_scene_dates"] == {"dunai": [f.stem for f in flagged]}
    html = index.read_text()
    assert html.count('class="warn"') == 1 and "single-scene mode" in html
    assert "single-scene mode" in (tmp_path / "report" / "report.md").read_text()


def test_map_date_prefers_a_sentinel2_date_when_the_vessel_counts_tie():
    import datetime as dt

    from berthwatch.pipeline.report import analysis as an
    from berthwatch.pipeline.core.contracts import S1, S2
    from berthwatch.pipeline.report.stage import choose_map_date

    p = an.AnalysisParams()
    window = (dt.date(2023, 9, 7), dt.date(2023, 10, 1))

    def obs(day, sensor, n_large, clear=1.0):
        date = dt.date(2023, 9, day)
        ships = [an.VesselSighting("rajin", date, 130.3, 42.2, 120.0, 18.0, 0.9, True, sensor) for _ in range(n_large)]
        return an.Observation("rajin", date, (sensor,), {sensor: clear}, ships,
                              stack_area_m2=40000.0 if sensor == S2 else None)

    # A radar-only date as full of ships as an optical one: the optical one, whose map shows the stacks.
    assert choose_map_date([obs(10, S1, 1), obs(14, S2, 1, clear=0.9)], window, p) == dt.date(2023, 9, 14)
    # More large ships at berth still come first.
    assert choose_map_date([obs(10, S1, 2), obs(14, S2, 1)], window, p) == dt.date(2023, 9, 10)
    # A cloudy optical date is not usable for stacks: clearest, then earliest.
    assert choose_map_date([obs(10, S1, 1, clear=0.8), obs(14, S2, 1, clear=0.5)], window, p) == dt.date(2023, 9, 10)
