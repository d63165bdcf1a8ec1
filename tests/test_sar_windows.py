"""Whole-scene Sentinel-1 detection window by window: equal to the whole-image result, in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest
import rasterio
from shapely.geometry import box

from berthwatch.detectors.sar import detect_vessels_sar
from berthwatch.pipeline.detect import sar_windows
from berthwatch.pipeline.detect.params import detector_params
from berthwatch.pipeline.detect.sar_windows import object_halo, open_scene, plan_windows, run_scene_vessels, \
    scene_vessels
from berthwatch.pipeline.simulation.s1_scene import write_s1_scene

CHUNK = 256


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 1,600 x 1,400 px SIMULATED scene: 70 ships (a crowded anchorage), coast, islands, a channel, no-data edges."""
    root = tmp_path_factory.mktemp("scene")
    write_s1_scene(root / "scene.tif", 1600, 1400, seed=11, n_ships=70, land_path=root / "land.tif")
    return root / "scene.tif", root / "land.tif"


def whole_image(scene_path, land_path, params):
    with rasterio.open(scene_path) as ds:
        vv, vh, transform = ds.read(1), ds.read(2), ds.transform
    with rasterio.open(land_path) as ds:
        land = ds.read(1).astype(bool)
    return detect_vessels_sar(vv, vh, transform, pixel_size=10.0, land_mask=land, **params)


def as_tuple(v):
    return (v.outline.wkb, v.x, v.y, v.length_m, v.width_m, v.heading_deg, v.area_m2, v.score, v.sensor,
            json.dumps(v.attributes, sort_keys=True))


@pytest.mark.parametrize("land_buffer_m, scan_merge", [(0.0, 1), (30.0, sar_windows.SCAN_MERGE_BLOCKS)])
def test_windows_give_the_whole_image_result(scene, land_buffer_m, scan_merge, monkeypatch):
    # Rescanned blocks are read in small boxes (one block apart at most: many, some inside another's
    # bounding box), or in the default clusters.
    monkeypatch.setattr(sar_windows, "SCAN_MERGE_BLOCKS", scan_merge)
    params = {**detector_params()["sar"], "land_buffer_m": land_buffer_m}
    expected = whole_image(*scene, params)
    spec = open_scene(*scene)
    stats = {}
    got = scene_vessels(spec, params, None, CHUNK, stats)
    assert len(expected) >= 40
    assert [as_tuple(v) for v in got] == [as_tuple(v) for v in expected]  # same objects, order, bits
    # Many windows, and every exact fallback was needed: rings widened past a window, censoring rescans.
    assert stats["windows"] == 7 * 6 and stats["rescanned_blocks"] > 0 and stats["rescanned_strips"] > 0
    # Some vessels straddle a window edge and were merged, not cut.
    straddling = 0
    for v in got:
        x0, y0, x1, y1 = v.outline.bounds
        (r0, r1), (c0, c1) = rasterio.transform.rowcol(spec.transform, [x0, x1], [y1, y0])
        outline_px = box(c0, r0, c1, r1)
        straddling += sum(outline_px.intersects(box(c.c0, c.r0, c.c1, c.r1))
                          for c in plan_windows(spec, CHUNK, 16)) > 1
    assert straddling >= 3


def test_groups_wider_than_a_window_are_split_and_cut_objects_reread(scene, monkeypatch):
    # 128 px windows split the anchorage's group of detections; a halo of one block cuts objects,
    # whose boxes are then read again, wider: still the whole-image result.
    params = detector_params()["sar"]
    expected = whole_image(*scene, params)
    monkeypatch.setattr(sar_windows, "object_halo", lambda *args: 16)
    stats = {}
    got = scene_vessels(open_scene(*scene), params, None, 128, stats)
    assert stats["split_groups"] >= 1 and stats["regrown_boxes"] >= 1
    assert [as_tuple(v) for v in got] == [as_tuple(v) for v in expected]


def test_dask_cluster_writes_the_same_file(scene, tmp_path, dask_cluster):
    scene_path, land_path = scene
    local, remote = tmp_path / "local.geojson", tmp_path / "dask.geojson"
    assert run_scene_vessels(scene_path, local, land_path, chunk=512, extra={"workers": 1}) >= 40
    run_scene_vessels(scene_path, remote, land_path, chunk=512,
                      extra={"scheduler": dask_cluster.scheduler_address})
    assert remote.read_bytes() == local.read_bytes()
    fc = json.loads(local.read_text())
    summary = fc["features"][0]["properties"]
    assert summary["kind"] == "scene_summary" and summary["simulated"] is True
    assert summary["vessels"] == len(fc["features"]) - 1
    assert all(f["properties"]["kind"] == "vessel" and f["properties"]["length_m"] >= 20 for f in fc["features"][1:])


class MeasuringEngine:
    """Runs every task in this process and records the memory it allocates at its peak (tracemalloc)."""

    def __init__(self):
        self.peaks: dict[str, int] = {}

    def parallel(self, n_tasks):
        return True

    def submit_all(self, fn, arg_tuples, *, preload, shared=()):
        done = []
        for args in arg_tuples:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            result = fn(*args)
            peak = tracemalloc.get_traced_memory()[1] - before
            self.peaks[fn.__name__] = max(self.peaks.get(fn.__name__, 0), peak)
            done.append(Done(result))
        return done


class Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def test_memory_per_task_is_bounded_by_the_window_not_the_scene(tmp_path):
    path = tmp_path / "big.tif"
    height, width = 2560, 2048
    write_s1_scene(path, height, width, seed=5, n_ships=25)
    spec = open_scene(path)
    params = detector_params()["sar"]
    side = CHUNK + 2 * object_halo(params, 10.0, 16)  # the largest window a task reads
    engine = MeasuringEngine()
    tracemalloc.start()
    try:
        vessels = scene_vessels(spec, params, engine, CHUNK)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(vessels) >= 20
    assert set(engine.peaks) == {"window_statistics", "window_scan", "box_vessels"}
    scene_bytes = height * width * 4 * 2  # VV + VH in float32: 42 MB
    # Each task: about 30 bytes per pixel of its window (two bands, masks, temporaries), whatever the scene.
    assert max(engine.peaks.values()) < 30 * side * side < 0.2 * scene_bytes, engine.peaks
    # The coordinator adds the block grids (1/256 of the pixels) and the candidates (~1 % of the water).
    assert peak < 0.4 * scene_bytes, peak


def test_cli_bad_scene_is_one_line(tmp_path):
    bad = tmp_path / "scene.tif"
    bad.write_text("not a tiff")
    res = subprocess.run([sys.executable, "-m", "berthwatch.pipeline.cli", "scene-vessels", str(bad),
                          "--out", str(tmp_path / "v.geojson")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"berthwatch: error: {bad}: not a readable GeoTIFF")
    assert not (tmp_path / "v.geojson").exists()
