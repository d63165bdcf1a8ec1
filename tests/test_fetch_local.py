"""Fetch from a static STAC catalog on disk (the simulated sample format, or air-gapped copies)."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pystac
import pytest

from berthwatch.pipeline.core.aoi import load_aoi
from berthwatch.pipeline.core.contracts import S1, S2, find_tiles, read_item, read_tile, write_tile
from berthwatch.pipeline.core.errors import UserError
from berthwatch.pipeline.fetch import FetchSettings, run_fetch
from berthwatch.pipeline.core.options import RunOptions

from fake_servers import aoi_file, tiff_bytes

BBOX = (130.280, 42.220, 130.288, 42.2255)
FAR = (30.0, 45.0, 30.01, 45.01)


def _item(item_id, when, bbox, props):
    lon0, lat0, lon1, lat1 = bbox
    geom = {"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]}
    return pystac.Item(item_id, geom, list(bbox), dt.datetime.fromisoformat(when), props)


def make_catalog(root, aoi):
    """Sample-generator style items ('data' asset on the AOI grid) plus an Earth-Search-style one."""
    g = aoi.grid()
    cat = pystac.Catalog("berthwatch-sample", "simulated sample")
    foot = (130.27, 42.21, 130.30, 42.23)
    s2 = {n: np.full((g.height, g.width), v, np.float32)
          for n, v in zip(("B02", "B03", "B04", "B08", "B11", "SCL"), (0.05, 0.06, 0.04, 0.03, 0.02, 6))}
    s2["B08"][:5] = np.nan
    write_tile(root / "items" / "sim-s2-20230908.tif", s2, g, S2)
    it = _item("sim-s2-20230908", "2023-09-08T02:15:29+00:00", foot,
               {"berthwatch:sensor": S2, "platform": "sentinel-2b", "berthwatch:simulated": True,
                "eo:cloud_cover": 3.0})
    it.add_asset("data", pystac.Asset("./sim-s2-20230908.tif"))
    cat.add_item(it)

    s1 = {"VV": np.full((g.height, g.width), 0.01, np.float32), "VH": np.full((g.height, g.width), 0.002, np.float32)}
    write_tile(root / "items" / "sim-s1-20230911.tif", s1, g, S1)
    it = _item("sim-s1-20230911", "2023-09-11T21:10:15+00:00", foot,
               {"berthwatch:sensor": S1, "platform": "sentinel-1a", "berthwatch:simulated": True})
    it.add_asset("data", pystac.Asset("./sim-s1-20230911.tif"))
    cat.add_item(it)

    # Per-band uint16 assets in another CRS (EPSG:4326), processing baseline 05.09 (-1000 DN offset).
    lb = (130.25, 42.19, 130.32, 42.25)
    it = _item("S2A_52TGN_20231002_0_L2A", "2023-10-02T02:15:29+00:00", foot,
               {"platform": "sentinel-2a", "s2:processing_baseline": "05.09", "eo:cloud_cover": 20.0})
    it.collection_id = S2
    for key, dn in {"blue": 1500, "green": 1600, "red": 1400, "nir": 1300, "swir16": 1200, "scl": 6}.items():
        path = root / "items" / f"eb_{key}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tiff_bytes(np.full((1, 100, 120), dn, np.uint16), lb, 4326, nodata=0))
        it.add_asset(key, pystac.Asset(f"./eb_{key}.tif"))
    cat.add_item(it)
    cat.add_item(_item("elsewhere", "2023-09-08T02:00:00+00:00", FAR, {"berthwatch:sensor": S2}))
    cat.normalize_hrefs(str(root))
    for item in cat.get_items():  # keep the asset files where they are written
        for a in item.assets.values():
            a.href = os.path.relpath(root / "items" / os.path.basename(a.href), os.path.dirname(item.get_self_href()))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


@pytest.fixture
def local(tmp_path):
    aoi = load_aoi(aoi_file(tmp_path, "testport", *BBOX))
    data = tmp_path / "data"
    catalog = make_catalog(data / "sample", aoi)
    return aoi, data, catalog


def opts(aoi, data, start=None, end=None):
    return RunOptions(aois=[aoi], start=start, end=end, data_dir=data, source="local")


def test_local_catalog_default_path_all_dates(local):
    aoi, data, catalog = local
    assert run_fetch(opts(aoi, data), FetchSettings(workers=2)) == 0  # default <data>/sample/catalog.json
    tiles = find_tiles(data)
    assert [(t.sensor, t.date.isoformat(), t.scene_id) for t in tiles] == [
        (S2, "2023-09-08", "sim-s2-20230908"), (S1, "2023-09-11", "sim-s1-20230911"),
        (S2, "2023-10-02", "S2A_52TGN_20231002_0_L2A")]
    bands, grid = read_tile(tiles[0].path)
    assert grid == aoi.grid() and np.isnan(bands["B08"][:5]).all() and np.allclose(bands["B08"][5:], 0.03)
    item = read_item(tiles[0].path)["properties"]
    assert item["berthwatch:simulated"] is True and item["berthwatch:source"] == "local"
    assert item["berthwatch:product_ids"] == ["sim-s2-20230908"]
    eb, _ = read_tile(tiles[2].path)
    np.testing.assert_allclose(eb["B02"], 0.05, atol=1e-6)
    assert read_item(tiles[2].path)["properties"]["berthwatch:simulated"] is False


def test_local_date_filter_rerun_and_changed_source(local):
    aoi, data, catalog = local
    o = opts(aoi, data, dt.date(2023, 9, 1), dt.date(2023, 9, 30))
    assert run_fetch(o, FetchSettings(catalog=catalog)) == 0
    assert len(find_tiles(data)) == 2
    first = {t.path: t.path.stat().st_mtime_ns for t in find_tiles(data)}
    assert run_fetch(o, FetchSettings(catalog=catalog)) == 0
    assert {t.path: t.path.stat().st_mtime_ns for t in find_tiles(data)} == first  # skipped
    src = data / "sample" / "items" / "sim-s1-20230911.tif"
    g = aoi.grid()
    write_tile(src, {"VV": np.full((g.height, g.width), 0.5, np.float32),
                     "VH": np.full((g.height, g.width), 0.1, np.float32)}, g, S1)
    assert run_fetch(o, FetchSettings(catalog=catalog)) == 0
    s1 = [t for t in find_tiles(data) if t.sensor == S1][0]
    assert np.allclose(read_tile(s1.path)[0]["VV"], 0.5)


def test_local_missing_catalog_is_one_line(tmp_path, local):
    aoi, data, catalog = local
    with pytest.raises(UserError, match="no such STAC catalog"):
        run_fetch(opts(aoi, data), FetchSettings(catalog=tmp_path / "nope.json"))


def test_items_written_like_the_sample_generator(tmp_path):
    """Items made by contracts.write_item in per-item folders, saved as pipeline.simulation.sample saves them."""
    from berthwatch.pipeline.core.atomic import write_json_atomic
    from berthwatch.pipeline.core.contracts import write_item

    aoi = load_aoi(aoi_file(tmp_path, "testport", *BBOX))
    g = aoi.grid()
    root = tmp_path / "sample"
    cat = pystac.Catalog("berthwatch-sample-x", "SIMULATED", catalog_type=pystac.CatalogType.SELF_CONTAINED)
    cat.set_self_href(str((root / "catalog.json").resolve()))
    items = []
    for sensor, day, sid, bands in (
            (S1, 5, "SIM_S1A_20230905T093015_testport", {"VV": 0.01, "VH": 0.002}),
            (S2, 8, "SIM_S2B_20230908T021529_testport",
             {"B02": 0.05, "B03": 0.06, "B04": 0.04, "B08": 0.03, "B11": 0.02, "SCL": 6})):
        when = dt.datetime(2023, 9, day, 9, tzinfo=dt.timezone.utc)
        tif = root / "items" / "testport" / sensor / when.date().isoformat() / f"{sid}.tif"
        write_tile(tif, {k: np.full((g.height, g.width), v, np.float32) for k, v in bands.items()}, g, sensor)
        item = write_item(tif, sensor=sensor, grid=g, datetime=when, platform="sentinel-1a", source="simulated:x",
                          product_ids=[sid], processing={}, simulated=True)
        cat.add_item(item)
        item.set_self_href(str(tif.with_suffix(".json").resolve()))
        items.append(item)
    for item in items:
        write_json_atomic(item.get_self_href(), item.to_dict(include_self_link=False, transform_hrefs=True))
    write_json_atomic(root / "catalog.json", cat.to_dict(include_self_link=False, transform_hrefs=True))

    data = tmp_path / "data"
    assert run_fetch(opts(aoi, data), FetchSettings(catalog=root / "catalog.json")) == 0
    tiles = find_tiles(data)
    assert [t.scene_id for t in tiles] == ["SIM_S1A_20230905T093015_testport", "SIM_S2B_20230908T021529_testport"]
    assert all(read_item(t.path)["properties"]["berthwatch:simulated"] for t in tiles)
    assert np.allclose(read_tile(tiles[1].path)[0]["B04"], 0.04)
