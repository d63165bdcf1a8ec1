"""The detect stage end to end on synthetic contract tiles (tests/tile_factory.py).

Scene: the rajin AOI grid with land along the top, a quay face, a pier, a
container yard and a basin; a ship anchored in the basin on every date, a
second ship moored at the quay on one date, cloud over part of the land on
another; Sentinel-1 and Sentinel-2 on every date.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy import ndimage
from shapely.geometry import Point, shape

from tile_factory import harbour, harbour_series, s1_bands, s2_bands, write_scene

from berthwatch.pipeline.detect import params as detect_params, stage as detect
from berthwatch.pipeline.detect.scenes import load_tile
from berthwatch.pipeline.core.aoi import available_aois
from berthwatch.pipeline.core.contracts import (
    LARGE_VESSEL_M, S1, S2, SUMMARY_FIELDS, TIMESERIES_COLUMNS, detection_path, find_tiles, item_path, tile_path,
    timeseries_path,
)
from berthwatch.pipeline.core.errors import UserError
from berthwatch.pipeline.core.geojson_io import read_detections
from berthwatch.pipeline.core.options import RunOptions



# ---------------------------------------------------------------- toy detectors
# The stage's own logic (reference mask, mosaics, counting, de-duplication,
# berth flags, files, increments) is tested with deterministic stand-ins for
# the image detectors, which are measured on real data elsewhere; one test at
# the end runs the real detectors.
def _toy_vessels(mask, transform, sensor, attrs):
    from berthwatch.detectors.measure import measure_objects
    from berthwatch.detectors.records import Vessel

    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    return [Vessel(o["outline"], o["x"], o["y"], o["length_m"], o["width_m"], o["heading_deg"], o["area_m2"], 0.9,
                   sensor, attributes=dict(attrs)) for o in measure_objects(labels, transform)]


def install_toy_detectors(mp):
    from berthwatch.detectors import optical, sar, stacks
    from berthwatch.detectors.records import ContainerStack

    def toy_optical(bands, transform, scl=None, reference_water=None, pixel_size=10.0, **params):
        hb = _layout(bands["B08"].shape)
        sea = reference_water if reference_water is not None else ~hb.land
        ship = (bands["B08"] > 0.15) & (bands["B02"] < 0.3) & sea
        return _toy_vessels(ship, transform, S2, {"nir": 0.24})

    def toy_sar(vv, vh=None, transform=None, pixel_size=10.0, land_mask=None, **params):
        ship = ndimage.binary_closing(vv > 0.5) & ~land_mask
        return _toy_vessels(ship, transform, S1, {"peak_vv_db": 4.8, "channels": ["vv", "vh"]})

    def toy_stacks(bands, transform, scl=None, water=None, vessels=None, pixel_size=10.0, **params):
        hb = _layout(bands["B08"].shape)
        seen = ~np.isin(scl, stacks.UNOBSERVED_SCL)
        mask = hb.yard & seen & ~water
        area = float(mask.sum() * 100.0)
        from rasterio import features as rf
        from shapely.geometry import shape as to_shape
        from shapely.ops import unary_union
        outline = unary_union([to_shape(g) for g, _ in rf.shapes(mask.astype(np.uint8), mask=mask,
                                                                 transform=transform)])
        teu = stacks.estimate_teu(area)
        found = [ContainerStack(outline, area, *teu)] if area else []
        land = ~water
        return found, {"observed_fraction": float((land & seen).sum() / land.sum()), "stack_area_m2": area,
                       "teu_estimate": teu[0], "teu_low": teu[1], "teu_high": teu[2], "n_stacks": len(found),
                       "stack_mask": mask}

    mp.setattr(optical, "detect_vessels_optical", toy_optical)
    mp.setattr(sar, "detect_vessels_sar", toy_sar)
    mp.setattr(stacks, "detect_container_stacks", toy_stacks)


def _layout(shape):
    grid = available_aois()["rajin"].grid()
    assert shape == (grid.height, grid.width)
    return harbour(grid)


@pytest.fixture
def toys(monkeypatch):
    install_toy_detectors(monkeypatch)

DATES = [dt.date(2023, 9, d) for d in (1, 6, 11, 16)]
BERTHED = DATES[1]
CLOUDY = DATES[3]


@pytest.fixture(scope="module")
def rajin():
    return available_aois()["rajin"]


def make_series(root: Path, aoi, dates=DATES, sensors=(S1, S2)):
    return harbour_series(root / "data", aoi.id, aoi.grid(), dates, berthed_on=[BERTHED], sensors=sensors,
                          clouds_on=[CLOUDY])


def options(root: Path, aoi, workers: int = 1, **kw) -> RunOptions:
    # One worker keeps detection in this process, where record_calls sees it.
    return RunOptions(aois=[aoi], data_dir=root / "data", out_dir=root / "out", extra={"workers": workers}, **kw)


@pytest.fixture
def record_calls(monkeypatch):
    """Dates actually recomputed by run_detect."""
    calls = []
    real = detect.detect_aoi_date

    def spy(ctx, date, tiles, params, timings=None, **kw):
        calls.append(date)
        return real(ctx, date, tiles, params, timings, **kw)

    monkeypatch.setattr(detect, "detect_aoi_date", spy)
    return calls


@pytest.fixture(scope="module")
def series_run(tmp_path_factory, rajin):
    root = tmp_path_factory.mktemp("series")
    hb = make_series(root, rajin)
    with pytest.MonkeyPatch.context() as mp:
        install_toy_detectors(mp)
        code = detect.run_detect(options(root, rajin))
    return root, hb, code


def summaries(root: Path, aoi_id="rajin") -> dict[dt.date, dict]:
    out = {}
    for p in sorted((root / "out" / "detections" / aoi_id).glob("*.geojson")):
        s, _ = read_detections(p)
        out[dt.date.fromisoformat(s["date"])] = s
    return out


# ---------------------------------------------------------------- end to end
def test_counts_vessels_berths_and_stacks_per_date(series_run):
    root, hb, code = series_run
    assert code == 0
    s = summaries(root)
    assert sorted(s) == DATES
    for date, summ in s.items():
        assert set(SUMMARY_FIELDS) <= set(summ)
        assert summ["kind"] == "aoi_summary" and summ["aoi"] == "rajin" and summ["simulated"] is True
        assert summ["sensors"] == [S2, S1] and summ["water_reference"] == "time-series"
        berthed = date == BERTHED
        # The anchored ship every date, plus the moored one on BERTHED; each seen by
        # both sensors and counted once.
        assert summ["vessels"] == (2 if berthed else 1), date
        assert summ["vessels_by_sensor"] == {S2: summ["vessels"], S1: summ["vessels"]}
        assert summ["vessels_seen_by_both"] == summ["vessels"]
        assert summ["vessels_at_berth"] == (1 if berthed else 0)
        assert summ["large_vessels"] == summ["vessels"]  # 150 m and 200 m ships
        yard_m2 = hb.yard.sum() * 100.0
        assert 0.8 * yard_m2 < summ["container_stack_area_m2"] < 1.1 * yard_m2
        assert summ["teu_low"] < summ["teu_estimate"] < summ["teu_high"]
        # The cloud hides a third of the land on CLOUDY.
        assert summ["stack_observed_fraction"] == (pytest.approx(0.64, abs=0.03) if date == CLOUDY else 1.0)
        assert summ["detector_version"] == detect_params.DETECTOR_VERSION
        assert len(summ["params_hash"]) == 16 and summ["params_hash"] == s[DATES[0]]["params_hash"]


def test_clear_fraction_reflects_the_cloud(series_run):
    root, _, _ = series_run
    s = summaries(root)
    assert s[DATES[0]]["clear_fraction"] == {S2: 1.0, S1: 1.0}
    # The cloud covers a quarter of the height over half the width (~12 % of the AOI).
    assert 0.80 < s[CLOUDY]["clear_fraction"][S2] < 0.95
    assert s[CLOUDY]["clear_fraction"][S1] == 1.0


def test_vessel_features_measure_the_ships(series_run, rajin):
    root, hb, _ = series_run
    _, feats = read_detections(detection_path(root / "out", "rajin", BERTHED))
    vessels = sorted((f["properties"] for f in feats if f["properties"]["kind"] == "vessel"),
                     key=lambda p: p["length_m"])
    moored, anchored = vessels
    assert moored["at_berth"] and not anchored["at_berth"]
    assert moored["length_m"] == pytest.approx(150, abs=20) and anchored["length_m"] == pytest.approx(200, abs=20)
    for v in vessels:
        assert v["sensor"] == S2 and v["sensors"] == [S2, S1] and v["matched_sensor"] == S1
        assert v["scene"] == "S2_20230906" and v["matched_scene"] == "S1_20230906"
        assert 0 <= v["heading_deg"] < 180 and 0 < v["score"] <= 1
        assert v["length_m"] >= LARGE_VESSEL_M
        # Self-contained: usable once separated from its file; no detector internals by default.
        assert v["aoi"] == "rajin" and v["date"] == BERTHED.isoformat() and v["simulated"] is True
        assert v["acquired"].startswith(BERTHED.isoformat()) and v["score_calibration"]
        assert v["id"].startswith(f"rajin-{BERTHED.isoformat()}-vessel-")
        assert rajin.geometry.contains(Point(v["lon"], v["lat"]))
        assert not any(k.startswith(("s2_", "s1_")) for k in v)
    assert len({v["id"] for v in vessels}) == 2
    stacks = [f for f in feats if f["properties"]["kind"] == "container_stack"]
    assert stacks and all(not f["properties"]["on_vessel"] for f in stacks)
    for f in stacks:
        p = f["properties"]
        assert p["id"].startswith(f"rajin-{BERTHED.isoformat()}-stack-") and p["sensor"] == S2
        assert p["date"] == BERTHED.isoformat() and p["acquired"] and p["simulated"] is True
    aoi_box = rajin.geometry.buffer(1e-3)
    for f in feats:
        g = shape(f["geometry"])
        assert g.is_valid and aoi_box.contains(g)  # lon/lat, inside the AOI


def test_detection_files_are_rfc7946_and_read_by_geopandas_and_ogr(series_run):
    gpd = pytest.importorskip("geopandas")
    root, _, _ = series_run
    path = detection_path(root / "out", "rajin", BERTHED)
    fc = json.loads(path.read_text())
    assert fc["type"] == "FeatureCollection" and "crs" not in fc
    for f in fc["features"]:
        ring = np.asarray(f["geometry"]["coordinates"][0] if f["geometry"]["type"] == "Polygon"
                          else f["geometry"]["coordinates"][0][0])
        signed = np.sum(ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1])
        assert signed > 0  # counter-clockwise exterior (right-hand rule)
    df = gpd.read_file(path)
    assert df.crs.to_epsg() == 4326 and list(df["kind"])[0] == "aoi_summary"
    assert (df["kind"] == "vessel").sum() == 2 and (df["kind"] == "container_stack").sum() >= 1
    pyogrio = pytest.importorskip("pyogrio")
    info = pyogrio.read_info(path)
    assert info["driver"] == "GeoJSON" and info["features"] == len(fc["features"])
    if shutil.which("ogrinfo"):
        res = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(path)], capture_output=True, text=True)
        assert res.returncode == 0 and "Feature Count" in res.stdout


def test_timeseries_has_one_row_per_date_joinable_by_port(series_run):
    import csv

    root, _, _ = series_run
    with open(timeseries_path(root / "out"), newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == TIMESERIES_COLUMNS
    assert [r["date"] for r in rows] == [d.isoformat() for d in DATES]
    assert {r["portid"] for r in rows} == {"rajin"} and rows[0]["portname"] == "Rajin (Najin) port"
    assert [int(r["vessels"]) for r in rows] == [1, 2, 1, 1]
    assert rows[1]["sensors"] == f"{S2};{S1}" and rows[0]["simulated"] == "true"
    assert float(rows[3]["clear_fraction_s2"]) < 0.95 and rows[0]["role"] == "origin"


def test_reference_mask_is_the_usual_water_and_cached(series_run, rajin):
    root, hb, _ = series_run
    tif = root / "out" / ".berthwatch" / "reference" / "rajin.tif"
    with rasterio.open(tif) as ds:
        water = ds.read(1).astype(bool)
        assert ds.crs == rajin.grid().crs
    # The moored ship (1 of 4 dates) and the anchored ship (enclosed) are water.
    assert (water == ~hb.land).mean() > 0.999


# ---------------------------------------------------------------- modes
def test_single_scene_mode_then_reference_once_history_exists(tmp_path, rajin, record_calls, toys):
    make_series(tmp_path, rajin, dates=[BERTHED], sensors=(S2,))
    assert detect.run_detect(options(tmp_path, rajin)) == 0
    s = summaries(tmp_path)[BERTHED]
    assert s["water_reference"] == "single-scene" and s["sensors"] == [S2]
    assert s["vessels"] == 2 and s["vessels_at_berth"] >= 1
    assert not (tmp_path / "out" / ".berthwatch" / "reference" / "rajin.tif").exists()
    make_series(tmp_path, rajin, dates=[DATES[2]], sensors=(S2,))
    record_calls.clear()
    assert detect.run_detect(options(tmp_path, rajin)) == 0
    # The new history changes the first date's inputs (now a reference mask): both computed.
    assert sorted(record_calls) == [BERTHED, DATES[2]]
    s = summaries(tmp_path)
    assert s[BERTHED]["water_reference"] == "time-series" and s[BERTHED]["vessels"] == 2
    assert s[DATES[2]]["vessels"] == 1


def test_several_scenes_of_a_sensor_on_a_date_are_mosaicked(tmp_path, rajin, toys):
    grid = rajin.grid()
    hb = harbour(grid)
    ship = hb.anchored_ship()
    half = (slice(None), slice(0, grid.width // 2))
    write_scene(tmp_path / "data", "rajin", grid, S2, DATES[0], "S2_A",
                s2_bands(grid, hb, [ship], nodata=[half], seed=1))
    write_scene(tmp_path / "data", "rajin", grid, S2, DATES[0], "S2_B", s2_bands(grid, hb, [ship], seed=2))
    assert detect.run_detect(options(tmp_path, rajin)) == 0
    s = summaries(tmp_path)[DATES[0]]
    assert s["clear_fraction"][S2] == 1.0 and s["scenes"] == ["S2_B", "S2_A"]  # most clear first
    assert s["vessels"] == 1  # the same ship in both scenes counts once


def test_parallel_workers_write_the_same_detections(series_run, rajin, tmp_path):
    # The real detectors: workers come from a fork server and do not see the toys patched in here.
    root, _, _ = series_run
    outs = {}
    for workers in (1, 2):
        opts = options(root, rajin, workers=workers)
        opts.out_dir = outs[workers] = tmp_path / f"out{workers}"
        assert detect.run_detect(opts) == 0
    for d in DATES:
        serial = detection_path(outs[1], "rajin", d).read_text()
        assert json.loads(serial)["features"][0]["properties"]["date"] == d.isoformat()
        assert detection_path(outs[2], "rajin", d).read_text() == serial
    assert timeseries_path(outs[2]).read_text() == timeseries_path(outs[1]).read_text()
    # The Sentinel-2 reference (its stack pass also runs on the workers) is the same too.
    for name in ("rajin-s2-median.tif", "rajin-yards.tif"):
        arrays = []
        for out in outs.values():
            with rasterio.open(out / ".berthwatch" / "reference" / name) as ds:
                arrays.append(ds.read())
        assert np.array_equal(arrays[0], arrays[1], equal_nan=True), name


# ---------------------------------------------------------------- incremental
def test_rerun_skips_changed_tile_recomputes_its_date_deleted_tile_removes_it(tmp_path, rajin, record_calls, toys):
    make_series(tmp_path, rajin)
    opts = options(tmp_path, rajin)
    assert detect.run_detect(opts) == 0 and sorted(record_calls) == DATES
    outputs = {d: detection_path(tmp_path / "out", "rajin", d) for d in DATES}
    stamp = {d: p.stat().st_mtime_ns for d, p in outputs.items()}

    record_calls.clear()
    assert detect.run_detect(opts) == 0
    assert record_calls == [] and {d: p.stat().st_mtime_ns for d, p in outputs.items()} == stamp

    # New content for one tile (other noise, same scene): only its date is recomputed
    # because the reference mask does not change.
    grid, hb = rajin.grid(), harbour(rajin.grid())
    write_scene(tmp_path / "data", "rajin", grid, S1, DATES[2], "S1_20230911",
                s1_bands(grid, hb, [hb.anchored_ship()], seed=999))
    record_calls.clear()
    assert detect.run_detect(opts) == 0
    assert record_calls == [DATES[2]]

    # A touched but unchanged tile is not recomputed (content hashes, not mtimes).
    p = tile_path(tmp_path / "data", "rajin", S2, DATES[0], "S2_20230901")
    p.touch()
    record_calls.clear()
    assert detect.run_detect(opts) == 0 and record_calls == []

    # Deleting the last date's tiles removes its detections and its timeseries row.
    for sensor in (S1, S2):
        tile = find_tiles(tmp_path / "data", ["rajin"], [sensor], DATES[3], DATES[3])[0].path
        tile.unlink()
        item_path(tile).unlink()
    assert detect.run_detect(opts) == 0
    assert not outputs[DATES[3]].exists()
    assert timeseries_path(tmp_path / "out").read_text().count("\nrajin,") == 3

    record_calls.clear()
    opts.force = True
    assert detect.run_detect(opts) == 0 and sorted(record_calls) == DATES[:3]


def test_new_sentinel2_tile_rebuilds_the_optical_reference_and_every_date(tmp_path, rajin, record_calls, toys):
    make_series(tmp_path, rajin, sensors=(S2,))
    opts = options(tmp_path, rajin, sensors=[S2])
    assert detect.run_detect(opts) == 0
    ref = tmp_path / "out" / ".berthwatch" / "reference"
    files = [ref / "rajin-s2-median.tif", ref / "rajin-yards.tif"]
    stamp = [f.stat().st_mtime_ns for f in files]

    record_calls.clear()
    assert detect.run_detect(opts) == 0
    assert record_calls == [] and [f.stat().st_mtime_ns for f in files] == stamp

    # Every date is mapped onto the median, so a changed Sentinel-2 tile recomputes all of them.
    grid, hb = rajin.grid(), harbour(rajin.grid())
    write_scene(tmp_path / "data", "rajin", grid, S2, DATES[2], "S2_20230911",
                s2_bands(grid, hb, [hb.anchored_ship()], seed=999))
    record_calls.clear()
    assert detect.run_detect(opts) == 0
    assert sorted(record_calls) == DATES and files[0].stat().st_mtime_ns != stamp[0]

    # Down to one date: no history, no reference files.
    for day in DATES[1:]:
        tile = find_tiles(tmp_path / "data", ["rajin"], [S2], day, day)[0].path
        tile.unlink()
        item_path(tile).unlink()
    assert detect.run_detect(opts) == 0
    assert not any(f.exists() for f in files) and not (ref / "rajin.tif").exists()
    assert summaries(tmp_path)[DATES[0]]["s2_normalisation"] == {"applied": False}


def test_date_filter_only_computes_the_selected_dates(tmp_path, rajin, record_calls, toys):
    make_series(tmp_path, rajin, sensors=(S2,))
    assert detect.run_detect(options(tmp_path, rajin, start=DATES[1], end=DATES[2])) == 0
    assert sorted(record_calls) == DATES[1:3]
    # The reference still uses the whole series: the moored ship is found.
    assert summaries(tmp_path)[BERTHED]["reference_dates"] == 4


# ---------------------------------------------------------------- bad input
def test_corrupt_tile_fails_its_date_with_one_line_and_keeps_the_others(tmp_path, rajin, caplog, toys):
    make_series(tmp_path, rajin, sensors=(S2,))
    opts = options(tmp_path, rajin)
    assert detect.run_detect(opts) == 0
    bad = tile_path(tmp_path / "data", "rajin", S2, BERTHED, "S2_20230906")
    bad.write_bytes(bad.read_bytes()[:5000])  # truncated after fetch
    caplog.clear()
    assert detect.run_detect(opts) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert str(bad) in errors[0] and "checksum" in errors[0]
    # The failed date keeps its earlier good detection until a new good one replaces it,
    # and failed.json says so; the others are intact.
    assert sorted(summaries(tmp_path)) == DATES
    failed = json.loads((tmp_path / "out" / "detections" / "failed.json").read_text())["failed"]
    assert [(f["aoi"], f["date"], f["kept_previous"]) for f in failed] == [("rajin", BERTHED.isoformat(), True)]
    assert "checksum" in failed[0]["error"]
    assert detect.run_detect(opts) == 1  # retried, still failing
    bad.unlink()
    item_path(bad).unlink()
    assert detect.run_detect(opts) == 0  # its tiles are gone: detection and failure forgotten
    assert BERTHED not in summaries(tmp_path)
    assert json.loads((tmp_path / "out" / "detections" / "failed.json").read_text()) == {"failed": []}


def test_cli_prints_one_line_and_exits_1(tmp_path, rajin):
    make_series(tmp_path, rajin, dates=DATES[:2], sensors=(S2,))
    bad = tile_path(tmp_path / "data", "rajin", S2, DATES[0], "S2_20230901")
    bad.write_text("not a tiff")
    cmd = [sys.executable, "-m", "berthwatch.pipeline.cli", "detect", "--aoi", "rajin",
           "--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "out")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if "No module named" in res.stderr:
        pytest.skip("CLI not runnable as a module")
    assert res.returncode == 1, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if str(bad) in ln]
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert detection_path(tmp_path / "out", "rajin", DATES[1]).exists()


@pytest.fixture
def one_tile(tmp_path, rajin):
    make_series(tmp_path, rajin, dates=[DATES[0]], sensors=(S2,))
    return find_tiles(tmp_path / "data", ["rajin"])[0], rajin.grid()


def _rewrite_item(tile):
    from berthwatch.pipeline.core.manifest import sha256_file

    item = json.loads(item_path(tile.path).read_text())
    item["assets"]["data"]["file:checksum"] = "1220" + sha256_file(tile.path)
    item_path(tile.path).write_text(json.dumps(item))


@pytest.mark.parametrize("problem, message", [
    ("junk", "not a readable GeoTIFF"),
    ("bands", "bands ('VV', 'VH'), expected ('B02'"),
    ("grid", "differs from the AOI grid"),
    ("item", "STAC item missing"),
    ("checksum", "does not match the file:checksum"),
])
def test_load_tile_names_the_file_and_the_problem(one_tile, problem, message):
    tile, grid = one_tile
    if problem == "junk":
        tile.path.write_bytes(b"II*\x00garbage" * 100)
        _rewrite_item(tile)
    elif problem == "bands":
        from berthwatch.pipeline.core.contracts import write_tile
        write_tile(tile.path, s1_bands(grid, harbour(grid)), grid, S1)
        _rewrite_item(tile)
    elif problem == "grid":
        from berthwatch.pipeline.core.contracts import write_tile
        other = available_aois()["dunai"].grid()
        write_tile(tile.path, s2_bands(other, harbour(other)), other, S2)
        _rewrite_item(tile)
    elif problem == "item":
        item_path(tile.path).unlink()
    else:
        tile.path.write_bytes(tile.path.read_bytes() + b"\x00")
    with pytest.raises(UserError) as err:
        load_tile(tile, grid)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(tile.path.with_suffix(".json" if problem == "item" else ".tif")) in str(err.value)


def test_no_tiles_is_a_user_error(tmp_path, rajin):
    (tmp_path / "data" / "tiles").mkdir(parents=True)
    with pytest.raises(UserError, match="no tiles"):
        detect.run_detect(options(tmp_path, rajin))
    with pytest.raises(UserError, match="no tiles folder"):
        detect.run_detect(options(tmp_path / "nowhere", rajin))


def test_unknown_detector_parameter_is_rejected():
    from berthwatch.pipeline.core.errors import UsageError

    with pytest.raises(UsageError, match="min_length"):
        detect_params.detector_params({"optical": {"min_length": 3}})
    assert detect_params.detector_params({"berth": {"distance_m": 50.0}})["berth"]["distance_m"] == 50.0


# ---------------------------------------------------------------- real detectors
def test_real_detectors_end_to_end(tmp_path, rajin):
    """The stage with the real detectors: valid files, the ships found on the
    right dates, the S1/S2 pairs merged. Loose on purpose: the detectors'
    accuracy is measured on real labelled data, not here."""
    make_series(tmp_path, rajin)
    assert detect.run_detect(options(tmp_path, rajin, workers=2)) == 0
    s = summaries(tmp_path)
    assert sorted(s) == DATES
    for date, summ in s.items():
        truth = 2 if date == BERTHED else 1
        assert summ["vessels"] <= sum(summ["vessels_by_sensor"].values())
        assert 1 <= summ["vessels"] <= truth + 1, (date, summ["vessels_by_sensor"])
        assert summ["container_stack_area_m2"] is not None and summ["teu_estimate"] is not None
    assert s[BERTHED]["vessels_at_berth"] >= 1


def test_hazy_date_is_normalised_to_the_median_and_measures_the_same_yard(tmp_path, rajin):
    """A date under a blue-weighted haze and a lower sun: the stack detector sees it on the
    radiometric scale of the AOI's median composite, so the same yard measures the same area."""
    grid = rajin.grid()
    dates = [dt.date(2023, 9, d) for d in (1, 6, 11, 16, 21)]
    hb = harbour(grid)
    # Built-up land that is not one flat value (roofs, roads, concrete): the fit needs a spread of
    # reflectance, and vegetation is not used (it changes with the season).
    paved = hb.land & ~hb.yard
    smooth = ndimage.gaussian_filter(np.random.default_rng(99).normal(size=hb.land.shape), 8)
    brightness = (0.6 + 0.8 * (smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)  # 0.6-1.4
    concrete = {"B02": 0.17, "B03": 0.18, "B04": 0.19, "B08": 0.21, "B11": 0.25}
    hazy = dates[2]
    gains = {"B02": 0.75, "B03": 0.78, "B04": 0.8, "B08": 0.82, "B11": 0.85}  # a darker day
    haze = {"B02": 0.06, "B03": 0.04, "B04": 0.025, "B08": 0.01, "B11": 0.0}
    for i, date in enumerate(dates):
        bands = s2_bands(grid, hb, [hb.anchored_ship()], seed=i)
        bands = {b: np.where(paved, concrete[b] * brightness, v) if b in gains else v for b, v in bands.items()}
        if date == hazy:
            bands = {b: v * gains[b] + haze[b] if b in gains else v for b, v in bands.items()}
        write_scene(tmp_path / "data", rajin.id, grid, S2, date, f"S2_{date:%Y%m%d}",
                    {b: v.astype(np.float32) for b, v in bands.items()})

    assert detect.run_detect(options(tmp_path, rajin, sensors=[S2])) == 0
    s = summaries(tmp_path)
    fit = s[hazy]["s2_normalisation"]
    assert fit["applied"]
    np.testing.assert_allclose(fit["gains"], [gains[b] for b in gains], atol=0.03)
    np.testing.assert_allclose(fit["offsets"], [haze[b] for b in haze], atol=0.01)
    areas = {d: s[d]["container_stack_area_m2"] for d in dates}
    others = np.median([a for d, a in areas.items() if d != hazy])
    assert others > 0.8 * hb.yard.sum() * 100.0
    assert areas[hazy] == pytest.approx(others, rel=0.03)  # measured: +5.7 % without the normalisation

    ref = tmp_path / "out" / ".berthwatch" / "reference"
    with rasterio.open(ref / "rajin-s2-median.tif") as ds:
        assert ds.descriptions == ("B02", "B03", "B04", "B08", "B11") and ds.crs == grid.crs
        median = ds.read()
    # The median of the five dates is the unhazed radiometry (one hazy date of five).
    assert abs(float(np.nanmedian(median[0][~hb.land])) - 0.06) < 0.005
    with rasterio.open(ref / "rajin-yards.tif") as ds:
        assert ds.descriptions == ("reference_yard", "median_stacks")
        yards, median_stacks = ds.read().astype(bool)
    assert (yards & hb.yard).sum() > 0.8 * hb.yard.sum() and (yards & ~hb.yard).sum() < 0.1 * hb.yard.sum()
    # Once normalised, the hazy date's ground matches the median as well as the other dates' does (the yard's
    # boxes are repainted on every date of this toy, so they are changed ground on each).
    unchanged = {d: s[d]["s2_normalisation"]["unchanged_fraction"] for d in dates}
    assert min(unchanged.values()) > 0.8 and unchanged[hazy] > min(u for d, u in unchanged.items() if d != hazy) - 0.05
    assert (median_stacks & hb.yard).sum() > 0.8 * hb.yard.sum()
    assert (median_stacks & ~hb.yard).sum() < 0.1 * hb.yard.sum()
