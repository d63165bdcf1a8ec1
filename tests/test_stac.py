"""Tiles and STAC that tools understand, checked offline against the vendored JSON schemas."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from rasterio.enums import ColorInterp

from berthwatch.pipeline.core.aoi import available_aois
from berthwatch.pipeline.core.contracts import S1, S2, SENSOR_BANDS, find_tiles, tile_path, write_item, write_tile
from berthwatch.pipeline.core.stac_fields import EXTENSIONS, cloud_cover_percent, sun_position
from berthwatch.pipeline.fetch.catalog import write_catalog

SCHEMAS = Path(__file__).parent / "data" / "stac-schemas"
ITEM_SCHEMA = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"
COLLECTION_SCHEMA = "https://schemas.stacspec.org/v1.1.0/collection-spec/json-schema/collection.json"
CATALOG_SCHEMA = "https://schemas.stacspec.org/v1.1.0/catalog-spec/json-schema/catalog.json"


def _no_network(uri: str):
    raise NoSuchResource(ref=uri)  # every schema must be vendored: the test never reaches the network


@pytest.fixture(scope="module")
def registry() -> Registry:
    """The vendored schemas, each under the URL it is published at (its path below stac-schemas/)."""
    resources = [(f"https://{p.relative_to(SCHEMAS).as_posix()}", Resource.from_contents(json.loads(p.read_text())))
                 for p in SCHEMAS.rglob("*.json")]
    return Registry(retrieve=_no_network).with_resources(resources)


def validate(obj: dict, schema_uri: str, registry: Registry) -> None:
    schema = registry.contents(schema_uri)
    Draft7Validator(schema, registry=registry).validate(obj)
    for ext in obj.get("stac_extensions", []):
        Draft7Validator(registry.contents(ext), registry=registry).validate(obj)


def test_every_declared_extension_is_vendored(registry):
    for uri in [ITEM_SCHEMA, COLLECTION_SCHEMA, CATALOG_SCHEMA, *EXTENSIONS.values()]:
        assert registry.contents(uri)


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("stac")
    grid = available_aois()["rajin"].grid()
    when = {S2: dt.datetime(2023, 9, 6, 2, 11, tzinfo=dt.timezone.utc), S1: dt.datetime(2023, 9, 6, 9, 10)}
    for sensor in (S2, S1):
        bands = {b: np.full((grid.height, grid.width), 0.1, np.float32) for b in SENSOR_BANDS[sensor]}
        if sensor == S2:
            bands["SCL"][:] = 4.0
            bands["SCL"][: grid.height // 4] = 9.0  # a quarter of the tile is cloud
        p = tile_path(root, "rajin", sensor, when[sensor].date(), f"{sensor[:10]}_test")
        write_tile(p, bands, grid, sensor)
        write_item(p, sensor=sensor, grid=grid, datetime=when[sensor], platform="sentinel-2a" if sensor == S2
                   else "sentinel-1a", source="test", product_ids=["X"], processing={})
    return root


def test_items_declare_and_fill_the_extensions_and_validate(tiles, registry):
    for t in find_tiles(tiles):
        item = json.loads(t.item.read_text())
        validate(item, ITEM_SCHEMA, registry)
        exts = set(item["stac_extensions"])
        props, asset = item["properties"], item["assets"]["data"]
        assert {EXTENSIONS["proj"], EXTENSIONS["file"], EXTENSIONS["view"]} <= exts
        assert props["proj:code"] == "EPSG:32652" and len(props["proj:bbox"]) == 4
        assert asset["file:checksum"].startswith("1220") and asset["file:size"] > 0
        assert 0 < props["view:sun_elevation"] < 90 or t.sensor == S1
        if t.sensor == S2:
            assert EXTENSIONS["eo"] in exts and EXTENSIONS["sar"] not in exts
            assert props["eo:cloud_cover"] == pytest.approx(25, abs=1)
            bands = {b["name"]: b for b in asset["eo:bands"]}
            assert bands["B04"]["common_name"] == "red" and bands["B02"]["center_wavelength"] == 0.49
            assert "reflectance" in bands["B08"]["unit"]
        else:
            assert EXTENSIONS["sar"] in exts and EXTENSIONS["eo"] not in exts
            assert props["sar:polarizations"] == ["VV", "VH"] and props["sar:frequency_band"] == "C"
            assert "linear power" in asset["berthwatch:bands"][0]["unit"]


def test_a_broken_item_fails_the_schema(tiles, registry):
    """The validation can fail: a wrong extension value is caught."""
    t = [t for t in find_tiles(tiles) if t.sensor == S1][0]
    item = json.loads(t.item.read_text())
    item["properties"]["sar:frequency_band"] = "Q"
    with pytest.raises(ValidationError):
        validate(item, ITEM_SCHEMA, registry)


def test_tiles_carry_colour_interpretation_and_units(tiles):
    s2 = [t for t in find_tiles(tiles) if t.sensor == S2][0]
    with rasterio.open(s2.path) as ds:
        assert ds.colorinterp[:3] == (ColorInterp.blue, ColorInterp.green, ColorInterp.red)
        assert all("reflectance" in u for u in ds.units[:5]) and ds.units[5] == "class"
    s1 = [t for t in find_tiles(tiles) if t.sensor == S1][0]
    with rasterio.open(s1.path) as ds:
        assert all("linear power" in u for u in ds.units) and "10*log10" in ds.tags()["display_hint"]


def test_catalog_with_a_collection_per_aoi_and_sensor_opens_and_validates(tiles, registry):
    root = write_catalog(tiles)
    validate(json.loads(root.read_text()), CATALOG_SCHEMA, registry)
    colls = sorted(tiles.glob("tiles/*/*/collection.json"))
    assert [c.parent.name for c in colls] == sorted([S1, S2])
    for c in colls:
        validate(json.loads(c.read_text()), COLLECTION_SCHEMA, registry)
    cat = pystac.Catalog.from_file(str(root))
    found = {c.id: [i.id for i in c.get_items()] for c in cat.get_children()}
    assert found == {f"rajin-{S1}": [f"{S1[:10]}_test"], f"rajin-{S2}": [f"{S2[:10]}_test"]}
    # Up to date and untouched when nothing changed; a sensor whose tiles are gone loses its collection.
    mtime = root.stat().st_mtime_ns
    write_catalog(tiles)
    assert root.stat().st_mtime_ns == mtime
    for t in find_tiles(tiles, sensors=[S1]):
        t.path.unlink()
        t.item.unlink()
    write_catalog(tiles)
    assert [c.id for c in pystac.Catalog.from_file(str(root)).get_children()] == [f"rajin-{S2}"]


def test_fetch_writes_the_catalog(demo_out, registry):
    root = demo_out / "data" / "catalog.json"
    cat = pystac.Catalog.from_file(str(root))
    n = sum(1 for c in cat.get_children() for _ in c.get_items())
    assert n == len(find_tiles(demo_out / "data")) and n > 40
    item = json.loads(next(iter(find_tiles(demo_out / "data"))).item.read_text())
    validate(item, ITEM_SCHEMA, registry)


def test_sun_position_and_cloud_cover():
    # Rajin, 6 Sep 2023 02:11 UTC (11:11 local): sun high in the south-east, ~50 degrees up.
    az, el = sun_position(dt.datetime(2023, 9, 6, 2, 11, tzinfo=dt.timezone.utc), 130.29, 42.23)
    assert 130 < az < 180 and 45 < el < 55
    az, el = sun_position(dt.datetime(2023, 6, 21, 12, 0), 0.0, 0.0)  # noon on the equator at the solstice
    assert el == pytest.approx(66.5, abs=1)
    scl = np.array([[0, 4, 8, np.nan], [9, 10, 4, 4]], float)
    assert cloud_cover_percent(scl) == 50.0 and cloud_cover_percent(np.zeros((2, 2))) is None
