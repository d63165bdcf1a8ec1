"""pipeline/review/: what the review notebooks show must be what the stages wrote.

A small output folder is built by hand on the rajin AOI grid: a harbour
(tests/tile_factory.py) seen by Sentinel-2 (two granules that each cover half
the AOI) and Sentinel-1 on a clear date, a cloudy Sentinel-2 date full of
false detections, the detections files, ``timeseries.csv`` and a report
``summary.json``.
"""

from __future__ import annotations

import datetime as dt
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import DATASETS  # noqa: E402
from shapely.geometry import box  # noqa: E402
from tile_factory import harbour, s1_bands, s2_bands, write_scene  # noqa: E402

from berthwatch.pipeline.review import activity, common, detections, validation  # noqa: E402
from berthwatch.pipeline.core.aoi import available_aois  # noqa: E402
from berthwatch.pipeline.core.contracts import (  # noqa: E402
    S1, S2, TIMESERIES_COLUMNS, detection_path, report_dir, timeseries_path,
)
from berthwatch.pipeline.core.errors import UserError  # noqa: E402
from berthwatch.pipeline.core.geojson_io import feature, to_lonlat, write_csv, write_feature_collection  # noqa: E402

CLEAR = dt.date(2023, 9, 4)
CLOUDY = dt.date(2023, 9, 9)


def _summary(date, vessels, large, clear, sensors, simulated=True):
    return {"kind": "aoi_summary", "aoi": "rajin", "date": date.isoformat(), "sensors": sensors,
            "scenes": [f"{s}-{date}" for s in sensors], "clear_fraction": {s: clear for s in sensors},
            "vessels": vessels, "vessels_at_berth": 1, "large_vessels": large, "container_stack_area_m2": 5000.0,
            "teu_estimate": 425.0, "teu_low": 255.0, "teu_high": 595.0, "detector_version": "test",
            "params_hash": "0" * 16, "simulated": simulated}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """(out_dir, data_dir, grid, harbour, ships) of a hand-made pipeline run."""
    root = tmp_path_factory.mktemp("review")
    out, data = root / "out", root / "data"
    grid = available_aois()["rajin"].grid()
    hb = harbour(grid)
    berthed = hb.berth_ship(int(grid.width * 0.25), length_px=12)
    anchored = hb.anchored_ship()
    ships = [berthed, anchored]
    full = s2_bands(grid, hb, ships, seed=1)
    half = grid.width // 2
    # Two granules of one pass, each with no data over the other's half: the chip must be their mosaic.
    west = {b: v.copy() for b, v in full.items()}
    east = {b: v.copy() for b, v in full.items()}
    for b in full:
        west[b][:, half:] = np.nan
        east[b][:, :half] = np.nan
    write_scene(data, "rajin", grid, S2, CLEAR, "S2_WEST", west)
    write_scene(data, "rajin", grid, S2, CLEAR, "S2_EAST", east)
    write_scene(data, "rajin", grid, S1, CLEAR, "S1_CLEAR", s1_bands(grid, hb, ships, seed=2))
    write_scene(data, "rajin", grid, S2, CLOUDY, "S2_CLOUDY",
                s2_bands(grid, hb, ships, clouds=[(slice(None), slice(None))], seed=3))

    lonlat = to_lonlat(grid.crs)
    t = grid.transform

    def outline(ship):
        h, w = (ship.length_px, ship.width_px) if ship.along_rows else (ship.width_px, ship.length_px)
        x0, y0 = t @ (ship.col, ship.row + h)
        x1, y1 = t @ (ship.col + w, ship.row)
        return box(x0, y0, x1, y1)

    vessels = [
        feature(lonlat(outline(berthed)), {"kind": "vessel", "length_m": 120.0, "width_m": 30.0, "heading_deg": 90.0,
                                           "area_m2": 3600.0, "score": 0.9, "at_berth": True, "sensor": S2,
                                           "sensors": [S2, S1], "scene": "S2_WEST", "distance_to_land_m": 0.0}),
        feature(lonlat(outline(anchored)), {"kind": "vessel", "length_m": 200.0, "width_m": 30.0,
                                            "heading_deg": 90.0, "area_m2": 6000.0, "score": 0.8, "at_berth": False,
                                            "sensor": S2, "sensors": [S2], "scene": "S2_WEST",
                                            "distance_to_land_m": 900.0}),
    ]
    yard = np.argwhere(hb.yard)
    (r0, c0), (r1, c1) = yard.min(axis=0), yard.max(axis=0)
    stack = feature(lonlat(box(*(t @ (c0, r1 + 1)), *(t @ (c1 + 1, r0)))),
                    {"kind": "container_stack", "area_m2": 5000.0, "teu_estimate": 425.0, "teu_low": 255.0,
                     "teu_high": 595.0, "on_vessel": False})
    aoi_geom = available_aois()["rajin"].geometry
    write_feature_collection(detection_path(out, "rajin", CLEAR),
                             [feature(aoi_geom, _summary(CLEAR, 2, 2, 1.0, [S2, S1])), *vessels, stack])
    write_feature_collection(detection_path(out, "rajin", CLOUDY),
                             [feature(aoi_geom, _summary(CLOUDY, 30, 9, 0.1, [S2]))])
    (out / "detections" / "rajin" / "notes.geojson").write_text("{}")  # not a date: ignored
    rows = [{"aoi": "rajin", "portid": "rajin", "date": d.isoformat(), "sensors": ";".join(s), "clear_fraction_s2": c,
             "clear_fraction_s1": 1.0 if S1 in s else None, "vessels": n, "vessels_at_berth": 1,
             "large_vessels": large, "teu_estimate": 425.0, "teu_low": 255.0, "teu_high": 595.0, "simulated": "true"}
            for d, s, c, n, large in ((CLEAR, [S2, S1], 1.0, 2, 2), (CLOUDY, [S2], 0.1, 30, 9))]
    write_csv(timeseries_path(out), rows, TIMESERIES_COLUMNS)
    call = {"aoi": "rajin", "id": "rajin-1", "length_m": 120.0, "lon": 130.28, "lat": 42.23,
            "arrive": ["2023-09-01", CLEAR.isoformat()], "depart": [CLEAR.isoformat(), "2023-09-14"],
            "seen": [CLEAR.isoformat()], "sensors": [S2, S1], "score": 0.9}
    summary = {"claim": "test-claim", "window": ["2023-09-07", "2023-10-01"], "simulated_input": True,
               "verdict": {"activity": "insufficient_data", "quantity": "insufficient_data", "reasons": []},
               "coverage": {"rajin": {S2: {"in_window": 1, "usable_in_window": 0, "baseline": 1,
                                           "usable_baseline": 1}}},
               "port_calls": [call], "voyages": []}
    report_dir(out).mkdir(parents=True)
    (report_dir(out) / "summary.json").write_text(json.dumps(summary))
    return out, data, grid, hb, ships


# ---------------------------------------------------------------- listing
def test_lists_aois_and_dates_from_the_detection_files(outputs):
    out, *_ = outputs
    assert common.list_aois(out) == ["rajin"]
    assert common.list_dates(out, "rajin") == [CLEAR, CLOUDY]
    assert common.list_dates(out, "dunai") == []


def test_suggested_date_prefers_a_clear_date_over_a_cloudy_one_with_more_detections(outputs):
    out, *_ = outputs
    assert detections.suggested_date(out, "rajin") == CLEAR


def test_suggested_date_without_detections_names_the_missing_folder(tmp_path):
    with pytest.raises(UserError, match="no detections"):
        detections.suggested_date(tmp_path, "rajin")


def test_default_out_dir_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("BERTHWATCH_OUT_DIR", raising=False)
    assert str(common.default_out_dir()) == "../demo-out"
    monkeypatch.setenv("BERTHWATCH_OUT_DIR", str(tmp_path))
    assert common.default_out_dir() == tmp_path


# ---------------------------------------------------------------- detections
def test_detections_gdf_numbers_features_and_reprojects(outputs):
    out, _, grid, hb, ships = outputs
    gdf = common.load_detections_gdf(out, "rajin", CLEAR.isoformat(), crs=grid.crs)
    assert gdf.crs == grid.crs
    assert gdf.attrs["summary"]["vessels"] == 2
    vessels = gdf[gdf["kind"] == "vessel"]
    assert list(vessels["vessel_id"]) == [1, 2]
    assert gdf.loc[gdf["kind"] == "container_stack", "stack_id"].tolist() == [1]
    assert gdf.loc[gdf["kind"] == "container_stack", "vessel_id"].isna().all()
    # The berthed ship's outline lands back on its pixels of the grid (within a pixel).
    col, row = ~grid.transform @ (vessels.geometry.iloc[0].centroid.x, vessels.geometry.iloc[0].centroid.y)
    berthed = ships[0]
    assert abs(row - (berthed.row + berthed.width_px / 2)) < 1.0
    assert abs(col - (berthed.col + berthed.length_px / 2)) < 1.0


def test_missing_detections_file_is_a_user_error(outputs):
    out, *_ = outputs
    with pytest.raises(UserError, match="no such detections file"):
        common.load_detections_gdf(out, "rajin", "2023-01-01")


def test_vessel_table_has_one_row_per_vessel_with_attributes(outputs):
    out, *_ = outputs
    table = detections.vessel_table(common.load_detections_gdf(out, "rajin", CLEAR))
    assert list(table.index) == [1, 2]
    assert table.loc[1, "sensors"] == "S2, S1" and table.loc[2, "sensors"] == "S2"
    assert table["at_berth"].tolist() == [True, False]
    assert table["large"].tolist() == [True, True]
    assert table.loc[2, "distance_to_land_m"] == 900
    assert 130 < table.loc[1, "lon"] < 131 and 42 < table.loc[1, "lat"] < 43


def test_vessel_and_stack_tables_of_a_date_without_features_are_empty(outputs):
    out, *_ = outputs
    gdf = common.load_detections_gdf(out, "rajin", CLOUDY)
    assert len(detections.vessel_table(gdf)) == 0 and len(detections.stack_table(gdf)) == 0
    assert gdf.attrs["summary"]["vessels"] == 30


# ---------------------------------------------------------------- imagery
def test_scene_chips_mosaic_granules_and_georeference(outputs):
    _, data, grid, hb, _ = outputs
    chips = common.scene_chips(data, "rajin", CLEAR)
    assert set(chips) == {S2, S1}
    s2, s1 = chips[S2], chips[S1]
    assert s2.image.shape == (grid.height, grid.width, 3)
    assert set(s2.scenes) == {"S2_WEST", "S2_EAST"}
    assert np.isfinite(s2.image).all(), "the two half granules must fill the whole chip"
    assert s2.image.min() >= 0 and s2.image.max() <= 1
    left, bottom, right, top = grid.bounds
    assert s2.extent == (left, right, bottom, top) and s2.crs == grid.crs
    assert s2.simulated and s1.simulated
    # Stretched true colour: land (brighter in red) is brighter than water.
    assert s2.image[hb.land].mean() > s2.image[~hb.land].mean() + 0.1
    # VV in dB: sea clutter about -20 dB, land about -8 dB.
    assert s1.image.shape == (grid.height, grid.width)
    assert -23 < np.median(s1.image[~hb.land]) < -17
    assert -11 < np.median(s1.image[hb.land & ~hb.yard]) < -5


def test_scene_chips_leave_out_sensors_without_a_tile(outputs):
    _, data, *_ = outputs
    assert set(common.scene_chips(data, "rajin", CLOUDY)) == {S2}
    assert common.scene_chips(data, "rajin", "2023-01-01") == {}


def test_tile_dates_per_sensor(outputs):
    _, data, *_ = outputs
    assert detections.tile_dates(data, "rajin", S2) == [CLEAR, CLOUDY]
    assert detections.tile_dates(data, "rajin", S1) == [CLEAR]


def test_plot_detections_draws_outlines_where_the_vessels_are(outputs):
    out, data, grid, *_ = outputs
    chip = common.scene_chips(data, "rajin", CLEAR)[S1]
    gdf = common.load_detections_gdf(out, "rajin", CLEAR, crs=chip.crs)
    fig, ax = plt.subplots()
    common.plot_chip(ax, chip)
    detections.plot_detections(ax, gdf, sensor=S1)
    styles = {}
    for line in ax.lines:
        xs, ys = line.get_data()
        styles.setdefault((line.get_color(), line.get_linestyle()), []).append((np.mean(xs), np.mean(ys)))
    # berthed vessel seen by S1: solid red; anchored one seen by S2 only: dotted cyan on the S1 image
    assert (common.VESSEL_COLOR[True], "-") in styles
    assert (common.VESSEL_COLOR[False], ":") in styles
    assert (common.STACK_COLOR, "-") in styles
    left, right, bottom, top = chip.extent
    for x, y in [p for pts in styles.values() for p in pts if not np.isnan(p[0])]:
        assert left <= x <= right and bottom <= y <= top
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["1", "2"]
    plt.close(fig)


def test_plot_review_marks_simulated_data(outputs):
    out, data, *_ = outputs
    fig = detections.plot_review(out, data, "rajin", CLEAR)
    texts = [t.get_text() for t in fig.texts]
    assert common.SIMULATED_LABEL in texts
    assert "2 vessels, 1 at berth, 2 large" in fig._suptitle.get_text()
    assert len([ax for ax in fig.axes if ax.images]) == 2
    plt.close(fig)
    grid_fig = detections.plot_date_grid(out, data, "rajin", [CLEAR, CLOUDY, "2023-01-01"], sensor=S2, ncols=2)
    titles = [ax.get_title(loc="left") for ax in grid_fig.axes]
    assert any("no sentinel-2-l2a tile" in t for t in titles)
    plt.close(grid_fig)


def test_real_data_is_not_stamped_simulated():
    fig = plt.figure()
    common.finish_figure(fig, "title", simulated=False)
    assert common.SIMULATED_LABEL not in [t.get_text() for t in fig.texts]
    plt.close(fig)


# ---------------------------------------------------------------- report outputs
def test_summary_and_timeseries_loaders(outputs, tmp_path):
    out, *_ = outputs
    summary = activity.load_summary(out)
    assert activity.claim_window(summary) == (dt.date(2023, 9, 7), dt.date(2023, 10, 1))
    ts = common.load_timeseries(out)
    assert ts["date"].dt.date.tolist() == [CLEAR, CLOUDY] and ts["simulated"].all()
    with pytest.raises(UserError, match="summary.json"):
        activity.load_summary(tmp_path)
    with pytest.raises(UserError, match="timeseries.csv"):
        common.load_timeseries(tmp_path)


def test_tables_of_the_summary(outputs):
    out, *_ = outputs
    summary = activity.load_summary(out)
    cov = activity.coverage_table(summary)
    assert cov.loc[("rajin", S2), "in_window"] == 1 and cov.loc[("rajin", S2), "usable_baseline"] == 1
    assert activity.voyage_table(summary).empty
    calls = activity.port_call_table(summary)
    assert calls.loc["rajin-1", "first_seen"] == CLEAR.isoformat() and calls.loc["rajin-1", "sightings"] == 1


def test_activity_and_voyage_figures(outputs):
    out, *_ = outputs
    summary = activity.load_summary(out)
    fig = activity.plot_activity(common.load_timeseries(out), summary)
    assert common.SIMULATED_LABEL in [t.get_text() for t in fig.texts]
    assert len(fig.axes) == 2
    plt.close(fig)
    fig = activity.plot_voyages(summary)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["rajin"]
    plt.close(fig)


# ---------------------------------------------------------------- validation
METRICS = {
    "overall": {"precision": 0.5, "recall": 0.4, "f1": 0.44, "tp": 4, "fp": 4, "fn": 6},
    "scenes": {"a": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 2, "fp": 2, "fn": 2},
               "b": {"precision": 0.5, "recall": 0.2, "f1": 0.3, "tp": 1, "fp": 1, "fn": 4},
               "c": {"precision": 0.2, "recall": 0.2, "f1": 0.2, "tp": 1, "fp": 4, "fn": 4}},
}


def test_worst_scenes_rank_by_recall_then_f1():
    assert validation.worst_scenes(METRICS, n=2) == ["c", "b"]


def test_existing_metrics_are_loaded_and_filtered(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(METRICS))
    got = validation.validation_metrics("sen2ships", tmp_path / "absent-dataset", tmp_path, scenes=["b"])
    assert list(got["scenes"]) == ["b"] and got["overall"] == METRICS["overall"]
    table = validation.metrics_table(got)
    assert list(table.index) == ["b", "overall"]
    with pytest.raises(UserError, match="unknown"):
        validation.validation_metrics("nope", tmp_path, tmp_path)


@pytest.fixture
def sen2ships_dir():
    path = DATASETS / "sen2ships"
    if not (path / "honolulu").is_dir():
        pytest.skip(f"validation dataset 'sen2ships' not found at {path} (lay ../shared/datasets beside the clone)")
    return path


def test_validation_subset_runs_the_validator_on_those_scenes_only(sen2ships_dir, tmp_path):
    metrics = validation.validation_metrics("sen2ships", sen2ships_dir, tmp_path / "v", scenes=["honolulu"])
    assert list(metrics["scenes"]) == ["honolulu"]
    written = json.loads((tmp_path / "v" / "metrics.json").read_text())
    assert written["scenes"]["honolulu"]["tp"] + written["scenes"]["honolulu"]["fn"] == 12  # labels of the port
    assert (tmp_path / "v" / "honolulu.png").exists()
    assert not any(p.is_symlink() for p in (tmp_path / "v").iterdir())


def test_validation_chips_show_the_errors_the_metrics_count(sen2ships_dir, tmp_path):
    metrics = validation.validation_metrics("sen2ships", sen2ships_dir, tmp_path, scenes=["honolulu"])
    m = metrics["scenes"]["honolulu"]
    chips = validation.validation_chips("sen2ships", sen2ships_dir, "honolulu", n=50)
    assert sum(c.kind == "miss" for c in chips) == m["fn"]
    assert sum(c.kind == "false_alarm" for c in chips) == m["fp"]
    for c in chips:
        h, w = c.image.shape[:2]
        if c.kind == "miss":
            x, y, bw, bh = c.label_box
            assert 0 <= x + bw / 2 <= w and 0 <= y + bh / 2 <= h, "the missed label is inside its chip"
        else:
            assert c.outline is not None and (c.outline >= -1).all()
    few = validation.validation_chips("sen2ships", sen2ships_dir, "honolulu", n=1)
    assert sum(c.kind == "miss" for c in few) == min(1, m["fn"])
    sizes = [float(c.caption.split("box ")[1].split(" m")[0]) for c in chips if c.kind == "miss"]
    assert sizes == sorted(sizes, reverse=True), "largest misses first"
    fig = validation.plot_validation_chips(chips[:4])
    assert fig is not None
    plt.close(fig)
    assert validation.plot_validation_chips([]) is None


def test_show_displays_a_png_and_closes_the_figure(capsys):
    pytest.importorskip("IPython", reason="IPython comes with ipykernel (dev dependency)")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    common.show(fig)
    assert not plt.fignum_exists(fig.number)
    assert "Image" in capsys.readouterr().out  # outside a kernel IPython prints the object's repr
    common.show(None)


def test_stack_reference_without_history_says_why(outputs):
    out, data, *_ = outputs
    fig = detections.plot_stack_reference(out, data, "rajin", CLEAR)  # hand-made outputs: no reference files
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(fig.axes) == 1 and any("no Sentinel-2 reference" in t for t in texts)
