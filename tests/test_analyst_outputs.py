"""What an analyst opens: honest tables, self-contained features, detections.gpkg, the lock."""

from __future__ import annotations

import csv
import datetime as dt
import json
import multiprocessing
import os
import signal
import subprocess
import sys

import numpy as np
import pyogrio
import pytest

from test_detect import CLOUDY, DATES, install_toy_detectors, make_series, options

from berthwatch.pipeline.core import observed
from berthwatch.pipeline.core.aoi import available_aois
from berthwatch.pipeline.core.contracts import S1, S2, TIMESERIES_COLUMNS, detection_path, timeseries_path
from berthwatch.pipeline.core.geojson_io import read_detections, write_feature_collection
from berthwatch.pipeline.core.manifest import DirLock
from berthwatch.pipeline.detect import stage as detect
from berthwatch.pipeline.detect.geopackage import geopackage_path, write_geopackage
from berthwatch.pipeline.detect.timeseries import write_timeseries


@pytest.fixture(scope="module")
def rajin():
    return available_aois()["rajin"]


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory, rajin):
    """The toy series of test_detect, detected twice: default, then with --debug-features."""
    root = tmp_path_factory.mktemp("analyst")
    make_series(root, rajin)
    with pytest.MonkeyPatch.context() as mp:
        install_toy_detectors(mp)
        assert detect.run_detect(options(root, rajin)) == 0
        default = {d: read_detections(detection_path(root / "out", "rajin", d)) for d in DATES}
        opts = options(root, rajin)
        opts.extra["debug_features"] = True
        assert detect.run_detect(opts) == 0
    return root, default


# ---------------------------------------------------------------- the rule
def test_usable_needs_the_aoi_and_its_berths_and_yards_clear():
    ok = {"aoi": 0.9, "berths": 0.8, "yards": 0.7}
    assert observed.usable_for_vessels(ok) and observed.usable_for_stacks(ok)
    # A clear AOI whose berths are under the cloud cannot show them empty.
    assert not observed.usable_for_vessels({**ok, "berths": 0.3})
    assert observed.usable_for_vessels({**ok, "yards": 0.1}) and not observed.usable_for_stacks({**ok, "yards": 0.1})
    assert not observed.usable_for_vessels({"aoi": 0.5}) and observed.usable_for_vessels({"aoi": 0.5}, min_clear=0.4)
    # A zone the AOI does not have does not constrain; no observation is never usable.
    assert observed.usable_for_vessels({"aoi": 0.7, "berths": None})
    assert not observed.usable_for_vessels({}) and not observed.usable_for_vessels({"aoi": None})
    assert not observed.usable_for_vessels({"aoi": float("nan")})


def test_berth_band_is_the_water_along_the_shore():
    land = np.zeros((50, 50), bool)
    land[:, :10] = True
    band = observed.berth_band(~land, land, pixel_size=10.0, band_m=100.0)
    assert band[:, 10:20].all() and not band[:, 21:].any() and not band[land].any()


def _summary(aoi_clear: float, berths: float, vessels: int, teu: float | None) -> dict:
    return {"kind": "aoi_summary", "aoi": "dunai", "aoi_name": "Dunai", "role": "destination",
            "date": "2023-09-21", "sensors": [S2], "scenes": ["x"], "clear_fraction": {S2: aoi_clear},
            "observed_fraction": {S2: {"aoi": aoi_clear, "berths": berths, "yards": 1.0}},
            "vessels": vessels, "vessels_at_berth": 0, "large_vessels": 0,
            "container_stack_area_m2": None if teu is None else teu * 10, "teu_estimate": teu, "teu_low": teu,
            "teu_high": teu, "detector_version": "t", "params_hash": "h", "simulated": True}


def test_timeseries_leaves_unobserved_counts_empty_never_zero(tmp_path):
    from shapely.geometry import box

    g = box(0, 0, 1, 1)
    for day, summ in (("2023-09-21", _summary(0.12, 0.15, 0, 0.0)), ("2023-09-26", _summary(0.9, 0.95, 3, 120.0))):
        summ["date"] = day
        write_feature_collection(tmp_path / "detections" / "dunai" / f"{day}.geojson",
                                 [{"type": "Feature", "properties": summ, "geometry": g.__geo_interface__}])
    write_timeseries(tmp_path)
    with open(timeseries_path(tmp_path), newline="") as f:
        reader = csv.DictReader(f)
        cloudy, clear = list(reader)
    # New columns are appended: the earlier ones keep their positions.
    assert tuple(reader.fieldnames) == TIMESERIES_COLUMNS and reader.fieldnames[:3] == ["portid", "portname", "date"]
    assert cloudy["usable"] == "false" and cloudy["usable_s2"] == "false" and cloudy["usable_stacks"] == "false"
    assert cloudy["vessels"] == "" and cloudy["teu_estimate"] == "" and cloudy["large_vessels"] == ""
    assert cloudy["observed_fraction_s2_berths"] == "0.15" and cloudy["clear_fraction_s2"] == "0.12"
    assert clear["usable"] == "true" and clear["vessels"] == "3" and float(clear["teu_estimate"]) == 120.0
    assert clear["observed_fraction_s1"] == ""  # no Sentinel-1 image: missing, not 0
    import pandas as pd

    df = pd.read_csv(timeseries_path(tmp_path))
    assert df["vessels"].isna().tolist() == [True, False] and df["usable"].tolist() == [False, True]


def test_summaries_record_zone_fractions_and_usable(debug_run):
    root, default = debug_run
    for d, (summ, _) in default.items():
        fr = summ["observed_fraction"]
        assert set(fr) == {S2, S1} and set(fr[S2]) == set(observed.ZONES)
        assert fr[S1]["aoi"] == 1.0 and fr[S1]["berths"] == 1.0
        assert summ["usable"] == observed.usable(summ) and summ["usable"]["vessels"]
    # The cloud of CLOUDY lies over part of the AOI: the berth share is measured, not assumed.
    assert default[CLOUDY][0]["observed_fraction"][S2]["aoi"] < 1.0


# ---------------------------------------------------------------- features
def test_debug_features_keep_the_detector_internals_and_ids_are_stable(debug_run):
    root, default = debug_run
    for d in DATES:
        _, feats = read_detections(detection_path(root / "out", "rajin", d))
        _, before = default[d]
        assert [f["properties"]["id"] for f in feats] == [f["properties"]["id"] for f in before]
        for f, g in zip(feats, before):
            p, q = f["properties"], g["properties"]
            assert set(q) < set(p) or p["kind"] == "container_stack"
            if p["kind"] == "vessel":
                assert p["s2_nir"] == 0.24 and "s2_nir" not in q
            assert {k: p[k] for k in q} == q


# ---------------------------------------------------------------- GeoPackage
def test_geopackage_has_three_layers_with_datetime_fields(debug_run):
    root, default = debug_run
    path = geopackage_path(root / "out")
    layers = dict(pyogrio.list_layers(path))
    assert set(layers) == {"summaries", "vessels", "stacks"}
    n_vessels = sum(1 for _, feats in default.values() for f in feats if f["properties"]["kind"] == "vessel")
    info = pyogrio.read_info(path, layer="vessels")
    assert info["features"] == n_vessels
    fields = dict(zip(info["fields"], info["dtypes"]))
    assert fields["date"].startswith("datetime64") and fields["acquired"].startswith("datetime64")
    vessels = pyogrio.read_dataframe(path, layer="vessels")
    assert vessels["id"].is_unique and set(vessels["aoi"]) == {"rajin"} and vessels["simulated"].all()
    assert sorted(vessels["date"].dt.date.unique()) == DATES
    # Every outline is the detections file's, coordinate for coordinate (stacks as MultiPolygons).
    import shapely
    from shapely.geometry import MultiPolygon, shape

    for layer, kind in (("vessels", "vessel"), ("stacks", "container_stack")):
        want = [shape(f["geometry"]) for d in sorted(default) for f in default[d][1] if f["properties"]["kind"] == kind]
        if layer == "stacks":
            want = [g if g.geom_type == "MultiPolygon" else MultiPolygon([g]) for g in want]
        got = pyogrio.read_dataframe(path, layer=layer).geometry.values
        assert want and len(got) == len(want) and shapely.equals_exact(got, np.array(want), tolerance=0).all()
    summaries = pyogrio.read_dataframe(path, layer="summaries")
    assert len(summaries) == len(DATES) and summaries["usable"].all()
    assert json.loads(summaries["clear_fraction"].iloc[0])[S1] == 1.0


def test_geopackage_is_rewritten_only_when_detections_change(debug_run):
    root, _ = debug_run
    path = geopackage_path(root / "out")
    mtime = path.stat().st_mtime_ns
    assert write_geopackage(root / "out") == path and path.stat().st_mtime_ns == mtime
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".detections")]  # no temporary left


# ---------------------------------------------------------------- the lock
def _hold(directory, ready):
    with DirLock(directory):
        ready.set()
        signal.pause() if hasattr(signal, "pause") else __import__("time").sleep(60)


def test_two_runs_on_one_folder_exclude_each_other_and_a_killed_run_frees_it(tmp_path, rajin):
    """A second `berthwatch detect` on a folder in use fails in one line; a crash leaves no stale lock."""
    make_series(tmp_path, rajin, dates=DATES[:2], sensors=(S1,))
    out = tmp_path / "out"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(out, ready))
    holder.start()
    try:
        assert ready.wait(20)
        cmd = [sys.executable, "-m", "berthwatch.pipeline.cli", "detect", "--aoi", "rajin", "--sensor", "s1",
               "--data-dir", str(tmp_path / "data"), "--out-dir", str(out), "--workers", "1"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and r.stderr.strip().count("\n") == 0
        assert f"another berthwatch run (pid {holder.pid})" in r.stderr and str(out) in r.stderr
        assert not (out / "detections").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(20)
    with DirLock(out):  # the operating system released the dead holder's lock
        pass


def test_the_lock_does_not_need_fcntl():
    """The lock works on Windows: nothing in the package imports the POSIX-only fcntl."""
    import pathlib

    import berthwatch

    root = pathlib.Path(berthwatch.__file__).resolve().parent.parent
    offenders = [p for sub in ("pipeline", "detectors") for p in (root / sub).rglob("*.py")
                 if "import fcntl" in p.read_text(encoding="utf-8")]
    assert offenders == []
