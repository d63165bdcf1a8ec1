"""The bad-input corpus: every command and file type, run in-process through the CLI.

Refused inputs: exit code 1 or 2, exactly one line on stderr naming the file or
argument, no traceback, and no file under the working folder changed or left
half-written. Bad tiles and items: the AOI-date fails with one line naming the
file (exit 1), its earlier detection is kept, the other dates complete. Damaged
caches and manifests are rebuilt with the same results.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from typer.testing import CliRunner

from tile_factory import harbour, s1_bands, write_scene

from berthwatch.pipeline.cli import app
from berthwatch.pipeline.core.aoi import available_aois
from berthwatch.pipeline.core.atomic import is_temp_name
from berthwatch.pipeline.core.contracts import S1, item_path, tile_path, write_item
from berthwatch.pipeline.core.options import RunOptions
from berthwatch.pipeline.core.shipped import shipped_dir
from berthwatch.pipeline.detect import run_detect

import datetime as dt

DATES = [dt.date(2023, 9, 1), dt.date(2023, 9, 7)]
BAD_DATE = DATES[0]
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
RAJIN = shipped_dir("berthwatch.aois") / "rajin.geojson"
CLAIM = shipped_dir("berthwatch.claims") / "us-nsc-2023-10-13.yaml"


# ---------------------------------------------------------------- the world each case starts from
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Sentinel-1 tiles of Rajin on two dates, their detections, and a static catalog of the tiles."""
    root = tmp_path_factory.mktemp("world")
    aoi = available_aois()["rajin"]
    grid = aoi.grid()
    hb = harbour(grid)
    for i, day in enumerate(DATES):
        write_scene(root / "data", "rajin", grid, S1, day, f"S1_{day:%Y%m%d}", s1_bands(grid, hb, [hb.anchored_ship()],
                                                                                       seed=i))
    opts = RunOptions(aois=[aoi], sensors=(S1,), data_dir=root / "data", out_dir=root / "out", extra={"workers": 1})
    assert run_detect(opts) == 0
    catalog = pystac.Catalog(id="world", description="the test world's tiles")
    for day in DATES:
        tile = tile_path(root / "data", "rajin", S1, day, f"S1_{day:%Y%m%d}")
        item = pystac.Item.from_dict(json.loads(item_path(tile).read_text()))
        (root / "catalog" / item.id).mkdir(parents=True)
        shutil.copy(tile, root / "catalog" / item.id / tile.name)
        catalog.add_item(item)
    catalog.normalize_hrefs(str(root / "catalog"))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root


@pytest.fixture
def w(world, tmp_path) -> Path:
    shutil.copytree(world, tmp_path / "w")
    return tmp_path / "w"


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (locks aside: they hold the pid of the last run)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "lock"}


def invoke(args: list[str]):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


def refused(root: Path, args: list, code: int, needle: str) -> None:
    before = snapshot(root)
    res = invoke(args)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == code, res.stderr
    assert len(lines) == 1, res.stderr
    assert needle in lines[0], lines[0]
    assert snapshot(root) == before


def detect_args(w: Path, *extra) -> list:
    return ["detect", "--aoi", "rajin", "--sensor", "s1", "--workers", "1", "--data-dir", w / "data",
            "--out-dir", w / "out", *extra]


def report_args(w: Path, *extra) -> list:
    return ["report", "--aoi", "rajin", "--out-dir", w / "out", *extra]


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# ---------------------------------------------------------------- command-line values
CLI_CASES = {
    "start-not-a-date": (lambda w: detect_args(w, "--start", "2023-13-45"), 2, "--start"),
    "end-before-start": (lambda w: detect_args(w, "--start", "2023-09-07", "--end", "2023-09-01"), 2, "--end"),
    "unknown-sensor": (lambda w: detect_args(w, "--sensor", "s3"), 2, "--sensor"),
    "unknown-aoi": (lambda w: ["detect", "--aoi", "atlantis", "--data-dir", w / "data"], 2, "--aoi"),
    "workers-not-a-number": (lambda w: detect_args(w, "--workers", "abc"), 2, "--workers"),
    "workers-negative": (lambda w: detect_args(w, "--workers", "-1"), 2, "--workers"),
    "unknown-option": (lambda w: detect_args(w, "--bogus"), 2, "--bogus"),
    "unknown-source": (lambda w: ["fetch", "--source", "ftp", "--data-dir", w / "data"], 2, "--source"),
    "max-cloud-over-100": (lambda w: ["fetch", "--source", "local", "--max-cloud", "150"], 2, "--max-cloud"),
    "unknown-orbit": (lambda w: ["fetch", "--source", "local", "--orbit", "sideways", "--catalog",
                                 w / "catalog" / "catalog.json", "--data-dir", w / "data"], 1, "--orbit"),
    "unknown-endpoint": (lambda w: ["fetch", "--endpoint", "mars", "--start", "2023-09-01", "--end", "2023-09-02",
                                    "--data-dir", w / "data"], 1, "--endpoint"),
    "stac-without-dates": (lambda w: ["fetch", "--source", "stac", "--data-dir", w / "data"], 2, "--start"),
    "missing-catalog": (lambda w: ["fetch", "--source", "local", "--catalog", w / "nope.json",
                                   "--data-dir", w / "data"], 1, "nope.json"),
    "catalog-not-json": (lambda w: ["fetch", "--source", "local", "--catalog", write(w / "cat.json", "{"),
                                    "--data-dir", w / "data"], 1, "cat.json"),
    "unknown-claim": (lambda w: report_args(w, "--claim", "no-such-claim"), 1, "--claim"),
    "aoi-show-unknown": (lambda w: ["aoi", "show", "atlantis"], 2, "atlantis"),
    "report-start-not-a-date": (lambda w: report_args(w, "--start", "2023-02-30"), 2, "--start"),
    "no-tiles-folder": (lambda w: detect_args(w)[:-4] + ["--data-dir", w / "empty", "--out-dir", w / "out"], 1,
                        "no tiles folder"),
    "out-dir-is-a-file": (lambda w: detect_args(w)[:-2] + ["--out-dir", write(w / "afile", "x")], 2, "--out-dir"),
    "data-dir-is-a-file": (lambda w: ["detect", "--aoi", "rajin", "--data-dir", write(w / "afile", "x")], 2,
                           "--data-dir"),
    "out-dir-name-too-long": (lambda w: detect_args(w)[:-2] + ["--out-dir", w / ("x" * 300)], 1,
                              "File name too long"),
    "validate-missing-path": (lambda w: ["validate", "opensarship", w / "nowhere"], 2, "nowhere"),
    "validate-missing-argument": (lambda w: ["validate", "sen2ships"], 2, "'path'"),
    "sample-missing-scenario": (lambda w: ["sample", "--scenario", w / "none.yaml", "--data-dir", w / "s"], 1,
                                "none.yaml"),
    "demo-scenario-is-a-folder": (lambda w: ["demo", "--scenario", w / "data", "--out-dir", w / "d"], 1,
                                  "is a folder"),
}


# ---------------------------------------------------------------- AOI files (detect --aoi <file>)
def _aoi(mutate) -> object:
    fc = json.loads(RAJIN.read_text())
    return mutate(fc) or fc


def _set(path: list, value):
    def mutate(fc):
        obj = fc
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return mutate


def _aoi_case(content, needle="rajin-bad.geojson"):
    def args(w):
        p = w / "rajin-bad.geojson"
        write(p, content if isinstance(content, (bytes, str)) else json.dumps(content))
        return ["detect", "--aoi", p, "--data-dir", w / "data", "--out-dir", w / "out"]
    return args, (2 if needle.startswith("--") else 1), needle


ANTIMERIDIAN = {"type": "Polygon", "coordinates": [[[179.95, 50.0], [-179.95, 50.0], [-179.95, 50.05],
                                                    [179.95, 50.05], [179.95, 50.0]]]}
AOI_CASES = {
    "aoi-not-json": _aoi_case("{not json"),
    "aoi-not-utf8": _aoi_case(b'{"type": "FeatureCollection", "features": [], "x": "\xff\xfe"}'),
    "aoi-is-a-list": _aoi_case([1, 2]),
    "aoi-no-features": _aoi_case({"type": "FeatureCollection", "features": []}),
    "aoi-feature-not-object": _aoi_case({"type": "FeatureCollection", "features": [1, "x"]}),
    "aoi-zone-not-object": _aoi_case(_aoi(lambda fc: fc["features"].append([0]))),
    "aoi-properties-not-object": _aoi_case(_aoi(_set(["features", 0, "properties"], [1]))),
    "aoi-missing-id": _aoi_case(_aoi(lambda fc: fc["features"][0]["properties"].pop("id"))),
    "aoi-upper-case-id": _aoi_case(_aoi(_set(["features", 0, "properties", "id"], "Rajin"))),
    "aoi-bad-role": _aoi_case(_aoi(_set(["features", 0, "properties", "role"], "smuggler"))),
    "aoi-point": _aoi_case(_aoi(_set(["features", 0, "geometry"], {"type": "Point", "coordinates": [130.3, 42.2]}))),
    "aoi-lat-lon-swapped": _aoi_case(_aoi(lambda fc: fc["features"][0]["geometry"].update(coordinates=[
        [[y, x] for x, y in ring] for ring in fc["features"][0]["geometry"]["coordinates"]]))),
    "aoi-crosses-180": _aoi_case(_aoi(_set(["features", 0, "geometry"], ANTIMERIDIAN))),
    "aoi-too-large": _aoi_case(_aoi(_set(["features", 0, "geometry"], {"type": "Polygon", "coordinates": [
        [[130.0, 42.0], [131.0, 42.0], [131.0, 42.6], [130.0, 42.6], [130.0, 42.0]]]}))),
    "aoi-bowtie": _aoi_case(_aoi(_set(["features", 0, "geometry"], {"type": "Polygon", "coordinates": [
        [[130.28, 42.22], [130.30, 42.24], [130.30, 42.22], [130.28, 42.24], [130.28, 42.22]]]}))),
    "aoi-unknown-zone": _aoi_case(_aoi(lambda fc: fc["features"].append(
        {"type": "Feature", "properties": {"zone": "casino"}, "geometry": fc["features"][0]["geometry"]}))),
    "aoi-is-a-folder": (lambda w: ["detect", "--aoi", str(w / "data") + "/", "--data-dir", w / "data"], 1,
                        "is a folder"),
    "aoi-missing-file": (lambda w: ["detect", "--aoi", w / "gone.geojson", "--data-dir", w / "data"], 1,
                         "no such AOI file"),
}


# ---------------------------------------------------------------- claim files (report --claim <file>)
def _claim_case(edit, needle="claim.yaml"):
    def args(w):
        text = CLAIM.read_text(encoding="utf-8")
        content = edit(text) if callable(edit) else edit
        p = write(w / "claim.yaml", content)
        return report_args(w, "--claim", p)
    return args, (2 if needle.startswith("--") else 1), needle


CLAIM_CASES = {
    "claim-impossible-date": _claim_case(lambda t: t.replace("date: 2023-10-13", "date: 2023-13-45")),
    "claim-not-utf8": _claim_case(b"id: x\nspeaker: {name: \xff\xfe}\n"),
    "claim-not-yaml": _claim_case("id: [unclosed\n"),
    "claim-is-a-list": _claim_case("- 1\n- 2\n"),
    "claim-missing-keys": _claim_case("id: partial\n"),
    "claim-window-reversed": _claim_case(lambda t: t.replace("end: 2023-10-01", "end: 2023-08-01")),
    "claim-negative-quantity": _claim_case(lambda t: t.replace("value: 1000", "value: -5")),
    "claim-nan-quantity": _claim_case(lambda t: t.replace("value: 1000", "value: .nan")),
    "claim-bad-relation": _claim_case(lambda t: t.replace("relation: at_least", "relation: roughly")),
    "claim-origin-names-no-aoi": _claim_case(lambda t: t.replace("origin: rajin", "origin: pyongyang")),
    "claim-origin-is-destination": _claim_case(lambda t: t.replace("origin: rajin", "origin: dunai")),
    "claim-is-a-folder": (lambda w: report_args(w, "--claim", str(w / "data") + "/"), 1, "is a folder"),
}


# ---------------------------------------------------------------- parameter files (--params)
def _params_case(content, command="detect", needle="params.yaml"):
    def args(w):
        p = write(w / "params.yaml", content)
        return (detect_args(w) if command == "detect" else report_args(w)) + ["--params", p]
    return args, 2, needle


PARAMS_CASES = {
    "params-pfa-negative": _params_case("detect: {sar: {pfa: -1}}\n"),
    "params-pfa-nan": _params_case("detect: {sar: {pfa: .nan}}\n"),
    "params-pfa-one": _params_case("detect: {sar: {pfa: 1.0}}\n"),
    "params-confidence-5": _params_case("report: {min_voyage_confidence: 5}\n", "report"),
    "params-yard-rate-over-1": _params_case("report: {yard_fall_given_departure: 1.5}\n", "report"),
    "params-detect-rate-zero": _params_case("report: {p_detect_s1: 0}\n", "report"),
    "params-transit-reversed": _params_case("report: {transit_days: [5, 1]}\n", "report"),
    "params-teu-per-container-zero": _params_case("report: {teu_per_container: [0, 2]}\n", "report"),
    "params-negative-size": _params_case("detect: {sar: {max_length_m: -600}}\n"),
    "params-infinite-size": _params_case("detect: {optical: {fill_radius_m: .inf}}\n"),
    "params-packing-negative": _params_case("detect: {stacks: {teu_params: {packing: -2}}}\n"),
    "params-fraction-over-1": _params_case("detect: {reference: {min_fraction: 1.5}}\n"),
    "params-unknown-section": _params_case("fetch: {}\n"),
    "params-unknown-step": _params_case("detect: {lidar: {pfa: 0.1}}\n"),
    "params-unknown-name": _params_case("detect: {sar: {pfaa: 0.1}}\n"),
    "params-wrong-kind": _params_case("detect: {sar: {pfa: high}}\n"),
    "params-impossible-date": _params_case("report: {min_clear: 2023-13-45}\n", "report"),
    "params-not-utf8": _params_case(b"detect: {sar: {pfa: \xff}}\n"),
    "params-not-a-mapping": _params_case("[1, 2]\n"),
    "params-is-a-folder": (lambda w: detect_args(w, "--params", w / "data"), 2, "is a folder"),
}


# ---------------------------------------------------------------- scenario files (sample --scenario)
SCENARIO_CASES = {
    "scenario-not-yaml": (lambda w: ["sample", "--scenario", write(w / "sc.yaml", "name: [x\n"),
                                     "--data-dir", w / "s"], 1, "sc.yaml"),
    "scenario-impossible-date": (lambda w: ["sample", "--scenario", write(w / "sc.yaml", (
        Path(__file__).parent / "scenarios" / "tiny.yaml").read_text().replace("start: 2023-09-04",
                                                                                 "start: 2023-13-45")),
                                            "--data-dir", w / "s"], 1, "sc.yaml"),
}


# ---------------------------------------------------------------- detections (report)
def _detections_case(edit, name="2023-09-03.geojson"):
    def args(w):
        good = json.loads((w / "out" / "detections" / "rajin" / f"{DATES[1]}.geojson").read_text())
        content = edit(good)
        write(w / "out" / "detections" / "rajin" / name, content if isinstance(content, str) else json.dumps(content))
        return report_args(w)
    return args, 1, name


def _summary_edit(**changes):
    def edit(fc):
        fc["features"][0]["properties"].update(changes)
        return fc
    return edit


DETECTIONS_CASES = {
    "detections-sensors-not-a-list": _detections_case(_summary_edit(sensors="sentinel-1-grd")),
    "detections-negative-count": _detections_case(_summary_edit(vessels=-3)),
    "detections-impossible-date": _detections_case(_summary_edit(date="2023-13-45")),
    "detections-not-json": _detections_case(lambda fc: "{"),
    "detections-features-not-objects": _detections_case(lambda fc: {"type": "FeatureCollection", "features": [1]}),
}


# ---------------------------------------------------------------- dataset folders (validate)
def _chip(path: Path, bands: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).gamma(4.4, 0.01 / 4.4, (bands, 64, 64)).astype(np.float32)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=bands, dtype="float32") as ds:
            ds.write(data)
    return path


def _sen2ships_port(w: Path, missing=(), vessels='{"annotations": []}') -> Path:
    port = w / "ds" / "port"
    for b in ("B02", "B03", "B04", "B08", "B11"):
        if b not in missing:
            write(port / f"{b}.tif", b"")
    write(port / "vessels.json", vessels)
    return w / "ds"


DATASET_CASES = {
    "opensarship-empty-folder": (lambda w: ["validate", "opensarship", (w / "ds").mkdir() or w / "ds", "--out",
                                            w / "v"], 1, "no OpenSARShip scene folders"),
    "sen2ships-empty-folder": (lambda w: ["validate", "sen2ships", (w / "ds").mkdir() or w / "ds", "--out",
                                          w / "v"], 1, "no sen2ships port folders"),
    "sen2ships-given-opensarship": (lambda w: ["validate", "sen2ships", _chip(
        w / "ds" / "S1A_IW_GRDH_1SDV_X" / "Patch_Cal" / "Cargo_x1_y1.tif", 2).parents[2], "--out", w / "v"], 1,
        "no sen2ships port folders"),
    "sen2ships-missing-band": (lambda w: ["validate", "sen2ships", _sen2ships_port(w, missing=("B11",)), "--out",
                                          w / "v"], 1, "B11.tif"),
    "sen2ships-labels-not-json": (lambda w: ["validate", "sen2ships", _sen2ships_port(w, vessels="{"), "--out",
                                             w / "v"], 1, "vessels.json"),
    "opensarship-one-band-in-dual-pol-product": (lambda w: ["validate", "opensarship", _chip(
        w / "ds" / "S1A_IW_GRDH_1SDV_X" / "Patch_Cal" / "Cargo_x1_y1.tif", 1).parents[2], "--out", w / "v"], 1,
        "Cargo_x1_y1.tif"),
    "opensarship-chip-not-a-tiff": (lambda w: ["validate", "opensarship", write(
        w / "ds" / "S1A_IW_GRDH_1SSV_X" / "Patch_Cal" / "Cargo_x1_y1.tif", "no tiff").parents[2], "--out",
        w / "v"], 1, "Cargo_x1_y1.tif"),
    "opensarship-no-chips": (lambda w: ["validate", "opensarship", (w / "ds" / "S1_X" / "Patch_Cal").mkdir(
        parents=True) or w / "ds", "--out", w / "v"], 1, "Patch_Cal"),
    "validate-path-is-a-file": (lambda w: ["validate", "sen2ships", write(w / "f.txt", "x")], 2, "f.txt"),
}

REFUSED = {**CLI_CASES, **AOI_CASES, **CLAIM_CASES, **PARAMS_CASES, **SCENARIO_CASES, **DETECTIONS_CASES,
           **DATASET_CASES}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_with_one_line_and_nothing_changed(w, case):
    make_args, code, needle = REFUSED[case]
    args = make_args(w)
    refused(w, args, code, needle)


# ---------------------------------------------------------------- tiles and items (detect)
def _bad_tile(w: Path) -> Path:
    return tile_path(w / "data", "rajin", S1, BAD_DATE, f"S1_{BAD_DATE:%Y%m%d}")


def _rewrite_checksum(tile: Path) -> None:
    item = json.loads(item_path(tile).read_text())
    item["assets"]["data"]["file:checksum"] = "1220" + hashlib.sha256(tile.read_bytes()).hexdigest()
    item_path(tile).write_text(json.dumps(item))


def _raster(tile: Path, bands: dict, transform=None) -> None:
    with rasterio.open(tile) as ds:
        profile = ds.profile
    profile.update(count=len(bands), driver="GTiff")
    if transform is not None:
        profile.update(transform=transform)
    tile.unlink()
    with rasterio.open(tile, "w", **profile) as ds:
        for i, (name, data) in enumerate(bands.items(), 1):
            ds.write(data, i)
            ds.set_band_description(i, name)


def _read(tile: Path) -> dict:
    with rasterio.open(tile) as ds:
        return dict(zip(ds.descriptions, ds.read()))


def t_zero_bytes(tile):
    tile.write_bytes(b"")
    _rewrite_checksum(tile)
    return tile, "empty file"


def t_truncated(tile):
    tile.write_bytes(tile.read_bytes()[:4000])
    return tile, "checksum"


def t_item(content):
    def mutate(tile):
        item_path(tile).write_text(content)
        return item_path(tile), item_path(tile).name
    return mutate


def t_item_missing(tile):
    item_path(tile).unlink()
    return item_path(tile), "missing"


def t_db_not_linear(tile):
    bands = _read(tile)
    _raster(tile, {k: (10 * np.log10(v)).astype(np.float32) for k, v in bands.items()})
    _rewrite_checksum(tile)
    return tile, "physical range"


def t_text_with_checksum(tile):
    tile.write_text("not a GeoTIFF")
    _rewrite_checksum(tile)
    return tile, "not a readable GeoTIFF"


def t_cross_pol_only(tile):
    _raster(tile, {"VH": _read(tile)["VH"]})
    _rewrite_checksum(tile)
    return tile, "bands"


def t_shifted_grid(tile):
    from affine import Affine

    with rasterio.open(tile) as ds:
        shifted = ds.transform @ Affine.translation(3, 0)
    _raster(tile, _read(tile), transform=shifted)
    _rewrite_checksum(tile)
    return tile, "differs from the AOI grid"


TILE_CASES = {
    "tile-zero-bytes-with-checksum": t_zero_bytes,
    "tile-truncated": t_truncated,
    "item-null": t_item("null"),
    "item-empty-list": t_item("[]"),
    "item-assets-list": t_item(json.dumps({"type": "Feature", "id": "x", "assets": [], "properties": {}})),
    "item-no-data-asset": t_item(json.dumps({"type": "Feature", "id": "x", "assets": {}, "properties": {}})),
    "item-not-json": t_item("{"),
    "item-missing": t_item_missing,
    "tile-in-db-not-linear": t_db_not_linear,
    "tile-not-a-geotiff-with-checksum": t_text_with_checksum,
    "tile-cross-pol-only": t_cross_pol_only,
    "tile-shifted-grid": t_shifted_grid,
}


@pytest.mark.parametrize("case", list(TILE_CASES))
def test_bad_tile_fails_its_date_only_and_keeps_its_earlier_detection(w, case):
    kept = (w / "out" / "detections" / "rajin" / f"{BAD_DATE}.geojson").read_bytes()
    other = w / "out" / "detections" / "rajin" / f"{DATES[1]}.geojson"
    other.unlink()  # must be recomputed despite the bad tile of the other date
    bad, needle = TILE_CASES[case](_bad_tile(w))
    res = invoke(detect_args(w))
    assert res.exit_code == 1, res.stderr
    naming = [ln for ln in res.stderr.splitlines() if str(bad) in ln]
    assert len(naming) == 1 and needle in naming[0], res.stderr
    assert (w / "out" / "detections" / "rajin" / f"{BAD_DATE}.geojson").read_bytes() == kept
    assert other.exists()
    failed = json.loads((w / "out" / "detections" / "failed.json").read_text())["failed"]
    assert [(f["date"], f["kept_previous"]) for f in failed] == [(BAD_DATE.isoformat(), True)]
    assert not [p for p in w.rglob("*") if is_temp_name(p.name)]


def test_date_folder_that_cannot_be_listed_fails_its_date(w):
    folder = _bad_tile(w).parent
    shutil.rmtree(folder)
    folder.symlink_to(folder.name)  # a link to itself: listing it fails (too many levels of links)
    res = invoke(detect_args(w))
    assert res.exit_code == 1
    assert len([ln for ln in res.stderr.splitlines() if str(folder) in ln]) == 1, res.stderr
    assert (w / "out" / "detections" / "rajin" / f"{BAD_DATE}.geojson").exists()  # kept
    failed = json.loads((w / "out" / "detections" / "failed.json").read_text())["failed"]
    assert [f["date"] for f in failed] == [BAD_DATE.isoformat()]


@pytest.mark.skipif(ROOT_USER, reason="permissions do not apply to root")
def test_unreadable_date_folder_fails_its_date(w):
    folder = _bad_tile(w).parent
    folder.chmod(0)
    try:
        res = invoke(detect_args(w))
    finally:
        folder.chmod(0o755)
    assert res.exit_code == 1
    assert len([ln for ln in res.stderr.splitlines() if str(folder) in ln]) == 1
    assert (w / "out" / "detections" / "rajin" / f"{BAD_DATE}.geojson").exists()


@pytest.mark.skipif(ROOT_USER, reason="permissions do not apply to root")
def test_read_only_output_folder(w):
    (w / "out").chmod(0o555)
    try:
        before = snapshot(w)
        res = invoke(detect_args(w, "--force"))
        assert res.exit_code == 1 and len(res.stderr.strip().splitlines()) == 1
        assert "Permission denied" in res.stderr and snapshot(w) == before
    finally:
        (w / "out").chmod(0o755)


# ---------------------------------------------------------------- catalog items (fetch --source local)
@pytest.mark.parametrize("content", ["null", "[]", json.dumps({"type": "Feature", "stac_version": "1.0.0", "id": "x",
                                                               "assets": [], "properties": {}, "links": []})])
def test_bad_catalog_item_fails_alone(w, content):
    items = sorted((w / "catalog").glob("*/*.json"))
    items[0].write_text(content)
    res = invoke(["fetch", "--source", "local", "--catalog", w / "catalog" / "catalog.json", "--data-dir",
                  w / "fresh"])
    assert res.exit_code == 1, res.stderr
    assert len([ln for ln in res.stderr.splitlines() if items[0].name in ln]) == 1, res.stderr
    assert len(list((w / "fresh" / "tiles").rglob("*.tif"))) == 1  # the good item's tile


# ---------------------------------------------------------------- damaged caches and leftovers
def _detections(w: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((w / "out" / "detections" / "rajin").glob("*.geojson"))}


@pytest.mark.parametrize("damage", ["truncated-npz", "manifest-wrong-shape", "manifest-not-json",
                                    "failed-json-damaged"])
def test_damaged_cache_or_manifest_is_rebuilt(w, damage):
    before = _detections(w)
    target = {"truncated-npz": w / "out" / ".berthwatch" / "reference" / "rajin.npz",
              "manifest-wrong-shape": w / "out" / ".berthwatch" / "manifest-detect.json",
              "manifest-not-json": w / "out" / ".berthwatch" / "manifest-detect.json",
              "failed-json-damaged": w / "out" / "detections" / "failed.json"}[damage]
    if damage == "truncated-npz":
        target.write_bytes(target.read_bytes()[:300])
    else:
        target.write_text({"manifest-wrong-shape": '{"outputs": [1]}'}.get(damage, "{"))
    assert invoke(detect_args(w)).exit_code == 0
    assert _detections(w) == before
    assert invoke(detect_args(w)).exit_code == 0  # and the rebuilt state is consistent


def test_leftover_temp_files_are_never_read_and_are_removed(w):
    complete = w / "out" / "detections" / "rajin" / f".{DATES[0]}.k3j4h5.tmp.geojson"
    shutil.copy(w / "out" / "detections" / "rajin" / f"{DATES[0]}.geojson", complete)
    partial = _bad_tile(w).parent / f".S1_{BAD_DATE:%Y%m%d}.x9y8z7.tmp.tif"
    partial.write_bytes(_bad_tile(w).read_bytes()[:1000])
    assert invoke(detect_args(w)).exit_code == 0
    assert not complete.exists()
    rows = (w / "out" / "timeseries.csv").read_text().splitlines()
    assert len(rows) == 1 + len(DATES)
    res = invoke(["fetch", "--source", "local", "--catalog", w / "catalog" / "catalog.json", "--data-dir",
                  w / "data"])
    assert res.exit_code == 0, res.stderr
    assert not partial.exists()


def test_editing_an_aoi_invalidates_its_detections(w):
    fc = json.loads(RAJIN.read_text())
    aoi_file = write(w / "rajin.geojson", fc)
    args = ["detect", "--aoi", aoi_file, "--sensor", "s1", "--workers", "1", "--data-dir", w / "data",
            "--out-dir", w / "out"]
    assert invoke(args).exit_code == 0
    mtimes = {p: p.stat().st_mtime_ns for p in (w / "out" / "detections" / "rajin").glob("*.geojson")}
    assert invoke(args).exit_code == 0  # the same AOI: up to date
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    fc["features"].append({"type": "Feature", "properties": {"zone": "berth"},
                           "geometry": fc["features"][0]["geometry"]})  # a berth zone: at_berth changes
    write(aoi_file, fc)
    assert invoke(args).exit_code == 0
    assert all(p.stat().st_mtime_ns != t for p, t in mtimes.items())


# ---------------------------------------------------------------- environment: disk full, SIGTERM
def test_disk_full_gives_one_line_and_no_half_written_file(w):
    """The file-size limit stands in for a full disk (EFBIG instead of ENOSPC: the same write error)."""
    before = snapshot(w)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, hard))  # this process only, restored below
    try:
        res = CliRunner().invoke(app, ["report", "--aoi", "rajin", "--out-dir", str(w / "out")])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert res.exit_code == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "File too large" in lines[0] and "Traceback" not in res.stderr
    assert not [p for p in w.rglob("*") if is_temp_name(p.name)]
    after = snapshot(w)
    assert {k: v for k, v in after.items() if not k.startswith("out/report/")} == \
        {k: v for k, v in before.items() if not k.startswith("out/report/")}
    assert "out/report/index.html" not in after


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (Linux /proc status SigCgt mask)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except OSError:
        pass
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_sigterm_exits_143_and_leaves_no_temp_file(w):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "berthwatch.pipeline.cli", *map(str, detect_args(w, "--force"))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if _catches(proc.pid, signal.SIGTERM):
            break  # inside the command: its SIGTERM handler is installed
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    assert proc.returncode == 143, err
    assert "terminated" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not [p for p in w.rglob("*") if is_temp_name(p.name)]
    for p in (w / "out" / "detections" / "rajin").glob("*.geojson"):
        json.loads(p.read_text())  # whole files only


def test_corpus_size():
    assert len(REFUSED) + len(TILE_CASES) >= 60
