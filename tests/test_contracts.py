import datetime as dt
import json

import numpy as np
import pystac
import pytest
import rasterio

from berthwatch.pipeline.core.aoi import available_aois
from berthwatch.pipeline.core.contracts import (
    S1, S2, SENSOR_BANDS, find_tiles, read_tile, tile_checksum_ok, tile_path, validate_tile, write_item, write_tile,
)
from berthwatch.pipeline.core.errors import UserError


@pytest.fixture
def grid():
    return available_aois()["rajin"].grid()


def _bands(grid, sensor, value=0.1):
    return {b: np.full((grid.height, grid.width), value, np.float32) for b in SENSOR_BANDS[sensor]}


def test_tile_is_a_cog_with_named_float32_bands_and_a_stac_item(tmp_path, grid):
    p = tile_path(tmp_path, "rajin", S1, dt.date(2023, 9, 6), "S1A_IW_test")
    bands = _bands(grid, S1)
    bands["VH"][:10, :10] = np.nan
    write_tile(p, bands, grid, S1)
    validate_tile(p, S1, grid)
    with rasterio.open(p) as ds:
        assert ds.descriptions == ("VV", "VH") and ds.dtypes == ("float32", "float32")
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.crs.to_epsg() == 32652 and ds.res == (10.0, 10.0)
    write_item(p, sensor=S1, grid=grid, datetime=dt.datetime(2023, 9, 6, 9, 10), platform="sentinel-1a",
               source="test", product_ids=["S1A_X"], processing={"backscatter": "sigma0"})
    item = pystac.Item.from_file(str(p.with_suffix(".json")))
    assert item.datetime.year == 2023 and item.properties["berthwatch:source"] == "test"
    assert item.properties["berthwatch:simulated"] is False
    assert tile_checksum_ok(p)
    data, g = read_tile(p)
    assert np.isnan(data["VH"][0, 0]) and g == grid
    p.write_bytes(p.read_bytes()[:-10] + b"0123456789")
    assert not tile_checksum_ok(p)


def test_validate_tile_names_the_problem(tmp_path, grid):
    p = tmp_path / "t.tif"
    write_tile(p, _bands(grid, S1), grid, S1)
    with pytest.raises(UserError, match="expected \\('B02'"):
        validate_tile(p, S2, grid)
    other = available_aois()["dunai"].grid()
    with pytest.raises(UserError, match="differs from the AOI grid"):
        validate_tile(p, S1, other)
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(UserError, match=str(p)):
        validate_tile(p, S1, grid)
    (tmp_path / "junk.tif").write_text("not a tiff")
    with pytest.raises(UserError, match="not a readable GeoTIFF"):
        validate_tile(tmp_path / "junk.tif", S1)


def test_write_tile_rejects_wrong_bands_or_shape(tmp_path, grid):
    with pytest.raises(ValueError, match="needs bands"):
        write_tile(tmp_path / "x.tif", {"VH": np.zeros((grid.height, grid.width))}, grid, S1)  # no co-pol
    bad = _bands(grid, S1)
    bad["VV"] = bad["VV"][:-1]
    with pytest.raises(ValueError):
        write_tile(tmp_path / "x.tif", bad, grid, S1)
    assert not list(tmp_path.iterdir())


def test_find_tiles_filters_and_ignores_temporary_files(tmp_path, grid):
    for day in (5, 10, 15):
        write_tile(tile_path(tmp_path, "rajin", S2, dt.date(2023, 9, day), f"S2_{day}"), _bands(grid, S2), grid, S2)
    tmp = tile_path(tmp_path, "rajin", S2, dt.date(2023, 9, 10), "S2_10").parent / ".S2_x.tmp.tif"
    tmp.write_text("partial")
    found = find_tiles(tmp_path, aois=["rajin"], sensors=[S2], start=dt.date(2023, 9, 6), end=dt.date(2023, 9, 30))
    assert [t.date.day for t in found] == [10, 15]
    assert find_tiles(tmp_path, aois=["dunai"]) == []
    assert find_tiles(tmp_path / "nothing") == []
