"""Fetch from a STAC API through real pystac-client and GDAL /vsicurl/ range reads on a local server."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from berthwatch.pipeline.core.aoi import load_aoi
from berthwatch.pipeline.core.contracts import S1, S2, find_tiles, read_item, read_tile, tile_checksum_ok
from berthwatch.pipeline.fetch import FetchSettings, run_fetch
from berthwatch.pipeline.core.options import RunOptions
from berthwatch.pipeline.fetch.sources.stac import band_assets

from fake_servers import FakeServer, StacApiFake, aoi_file, stac_item, tiff_bytes

BBOX = (130.280, 42.220, 130.288, 42.2255)
FOOT = (130.2, 42.1, 130.4, 42.3)
S2_REFL = {"blue": 0.05, "green": 0.06, "red": 0.04, "nir": 0.03, "swir16": 0.02}


def _cog(data, bounds, epsg, nodata=None):
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as rio_copy

    raw = tiff_bytes(data, bounds, epsg, nodata=nodata)
    with MemoryFile(raw) as src_mem, src_mem.open() as src, MemoryFile() as dst:
        rio_copy(src, dst.name, driver="COG", blocksize=128, overviews="NONE")
        return dst.read()


def build_catalog(aoi, server_url):
    """Two S2 granules on 2023-09-08 (one half empty) + one on 09-20, and one S1 RTC scene in EPSG:4326."""
    g = aoi.grid()
    left, bottom, right, top = g.bounds
    margin = 200.0
    b = (left - margin, bottom - margin, right + margin, top + margin)
    w, h = int((b[2] - b[0]) / 10), int((b[3] - b[1]) / 10)
    files, items = {}, []

    def s2(item_id, when, cloud, bump, half_empty=False, raster_scale=False):
        assets = {}
        for key, refl in {**S2_REFL, "scl": None}.items():
            if key == "scl":
                dn = np.full((1, h, w), 6, np.uint16)
            elif raster_scale:
                dn = np.full((1, h, w), round((refl + bump + 0.1) * 10000), np.uint16)
            else:
                dn = np.full((1, h, w), round((refl + bump) * 10000) + 1000, np.uint16)  # BOA_ADD_OFFSET
            if half_empty:
                dn[:, :, : w // 2] = 0
            scale = 2 if key == "swir16" else 1  # B11 at 20 m
            data = dn[:, ::scale, ::scale]
            name = f"{item_id}_{key}.tif"
            files[name] = _cog(data, b, 32652, nodata=0)
            asset = {"href": f"{server_url}/files/{name}", "type": "image/tiff; application=geotiff"}
            if raster_scale and key != "scl":
                asset["raster:bands"] = [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]
            assets[key] = asset
        props = {"eo:cloud_cover": cloud, "platform": "sentinel-2b", "s2:processing_baseline": "05.09"}
        items.append(stac_item(item_id, "sentinel-2-l2a", when, FOOT, assets, props))

    s2("S2B_52TGN_20230908_0_L2A", "2023-09-08T02:15:29Z", 5.0, 0.0, half_empty=True)
    s2("S2B_52TGP_20230908_0_L2A", "2023-09-08T02:15:33Z", 30.0, 0.1, raster_scale=True)
    s2("S2A_52TGN_20230920_0_L2A", "2023-09-20T02:15:29Z", 10.0, 0.0)
    s2("S2A_52TGN_20230925_0_L2A", "2023-09-25T02:15:29Z", 97.0, 0.0)  # too cloudy

    lb = (130.25, 42.19, 130.32, 42.25)
    for pol, val in (("vv", 0.02), ("vh", 0.004)):
        name = f"S1A_rtc_{pol}.tif"
        files[name] = _cog(np.full((1, 120, 140), val, np.float32), lb, 4326, nodata=-32768.0)
    items.append(stac_item("S1A_IW_GRDH_1SDV_20230911T211015_rtc", "sentinel-1-rtc", "2023-09-11T21:10:15Z", FOOT,
                           {p: {"href": f"{server_url}/files/S1A_rtc_{p}.tif",
                                "raster:bands": [{"nodata": -32768.0}]} for p in ("vv", "vh")},
                           {"platform": "SENTINEL-1A", "sat:orbit_state": "ascending"}))
    return items, files


@pytest.fixture
def stac(tmp_path):
    server = FakeServer().start()
    aoi = load_aoi(aoi_file(tmp_path, "testport", *BBOX))
    items, files = build_catalog(aoi, server.url)
    api = StacApiFake(server, items, files)
    yield server, api, aoi, tmp_path / "data"
    server.stop()


def options(aoi, data, sensors=(S2, S1)):
    return RunOptions(aois=[aoi], start=dt.date(2023, 9, 1), end=dt.date(2023, 9, 30), sensors=tuple(sensors),
                      data_dir=data, source="stac")


def settings(api, **kw):
    return FetchSettings(stac_api=api.url, workers=kw.pop("workers", 2), timeout_s=kw.pop("timeout_s", 2),
                         backoff_s=kw.pop("backoff_s", 0.05), **kw)


def test_stac_fetch_reads_windows_converts_and_mosaics(stac):
    server, api, aoi, data = stac
    assert run_fetch(options(aoi, data), settings(api)) == 0
    tiles = find_tiles(data)
    assert [(t.sensor, t.date.isoformat()) for t in tiles] == [
        (S2, "2023-09-08"), (S1, "2023-09-11"), (S2, "2023-09-20")]
    assert len(server.hits("/stac/search")) >= 3  # paged
    ranged = [r for r in server.hits("/files/", "GET") if "Range" in r.headers]
    assert ranged, "COGs must be read with HTTP range requests"

    bands, grid = read_tile(tiles[2].path)
    assert grid == aoi.grid()
    np.testing.assert_allclose(bands["B02"], 0.05, atol=1e-6)  # (DN - 1000) / 10000
    np.testing.assert_allclose(bands["B11"], 0.02, atol=1e-6)  # 20 m band resampled
    assert np.all(bands["SCL"] == 6)

    mosaic, _ = read_tile(tiles[0].path)
    # Least cloudy first: the 5 % granule where it has data, the 30 % one (raster:bands scale/offset) elsewhere.
    vals = np.unique(np.round(mosaic["B04"], 4))
    np.testing.assert_allclose(vals, [0.04, 0.14], atol=1e-6)
    assert tiles[0].scene_id == "S2_20230908_2scenes"

    s1, _ = read_tile(tiles[1].path)
    np.testing.assert_allclose(s1["VV"], 0.02, rtol=1e-5)  # reprojected from EPSG:4326
    item = read_item(tiles[1].path)
    assert item["properties"]["berthwatch:source"] == "stac"
    assert "gamma0" in item["properties"]["berthwatch:processing"]["backscatter"]


def test_stac_faults_are_retried_and_rerun_skips(stac):
    server, api, aoi, data = stac
    server.inject("/stac/search", ("status", 429, {"Retry-After": "1"}), ("truncate",))
    server.inject("/files/", ("status", 500), ("reset",), ("status", 503))
    assert run_fetch(options(aoi, data), settings(api, workers=1)) == 0
    assert not any(server.faults.values())  # every injected fault was met and survived
    searches = server.hits("/stac/search")
    assert searches[1].time - searches[0].time >= 0.9  # Retry-After (seconds) honoured
    assert len(find_tiles(data)) == 3 and all(tile_checksum_ok(t.path) for t in find_tiles(data))
    n = len(server.requests)
    assert run_fetch(options(aoi, data), settings(api)) == 0
    assert not server.hits("/files/")[n:] and all(not r.path.startswith("/files/") for r in server.requests[n:])


@pytest.mark.parametrize("fault", [("status", 503), ("reset",)])
def test_each_fault_is_retried_by_one_layer_only(stac, fault):
    """attempts=3 means three requests, whichever layer retries (not 3 x 3 with two stacked)."""
    server, api, aoi, data = stac
    server.inject("/stac/search", *[fault] * 20)
    assert run_fetch(options(aoi, data, sensors=(S2,)), settings(api, workers=1, attempts=3)) == 1
    assert len(server.hits("/stac/search")) == 3
    server.faults.clear()


def test_stac_unreachable_asset_fails_that_tile_only(stac):
    server, api, aoi, data = stac
    server.inject("/files/S1A_rtc", *[("reset",)] * 40)
    assert run_fetch(options(aoi, data), settings(api, workers=1, attempts=2)) == 1
    assert [t.sensor for t in find_tiles(data)] == [S2, S2]
    assert not [p for p in data.rglob("*") if ".tmp" in p.name]
    server.faults.clear()
    assert run_fetch(options(aoi, data), settings(api)) == 0
    assert len(find_tiles(data)) == 3


def test_band_assets_offsets():
    refl = {"href": "x"}
    new = band_assets({"s2:processing_baseline": "05.09"}, {"blue": refl}, S2)["B02"]
    assert (new.scale, new.offset) == (1e-4, -0.1)
    old = band_assets({"s2:processing_baseline": "03.01"}, {"B02": refl}, S2)["B02"]
    assert (old.scale, old.offset) == (1e-4, 0.0)
    applied = band_assets({"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": True},
                          {"blue": refl}, S2)["B02"]
    assert applied.offset == 0.0
    declared = band_assets({}, {"blue": {"href": "x", "raster:bands": [{"scale": 2e-4, "offset": -0.2}]}}, S2)
    assert (declared["B02"].scale, declared["B02"].offset) == (2e-4, -0.2)


def test_malformed_search_results_fail_alone(stac):
    """A search page holding null, a list and an item whose assets are a list: those fail, the rest is fetched."""
    import json

    from fake_servers import Response

    server, api, aoi, data = stac

    def with_bad_results(req):
        resp = api.search(req)
        page = json.loads(resp.body)
        if not req.json().get("token"):
            page["features"] += [None, [], {**page["features"][0], "id": "no-assets", "assets": []}]
        return Response.json(page)

    server.routes.insert(0, ("POST", "/stac/search", with_bad_results))
    assert run_fetch(options(aoi, data), settings(api)) == 1
    assert [(t.sensor, t.date.isoformat()) for t in find_tiles(data)] == [
        (S2, "2023-09-08"), (S1, "2023-09-11"), (S2, "2023-09-20")]
