"""Detections GeoJSON must open in geopandas and GDAL/OGR as written."""

import json

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import LinearRing, box, shape

from berthwatch.pipeline.core.aoi import available_aois
from berthwatch.pipeline.core.contracts import SUMMARY_FIELDS
from berthwatch.pipeline.core.errors import UserError
from berthwatch.pipeline.core.geojson_io import feature, read_detections, to_lonlat, write_feature_collection


def _summary():
    return {k: 0 for k in SUMMARY_FIELDS} | {"kind": "aoi_summary", "aoi": "rajin", "date": "2023-09-08",
                                              "sensors": ["sentinel-2-l2a"], "scenes": ["S2_20230908"], "clear_fraction": {"sentinel-2-l2a": 0.9}}


def test_detections_file_reads_back_in_geopandas_and_ogr(tmp_path):
    aoi = available_aois()["rajin"]
    crs = aoi.utm_crs
    project = to_lonlat(crs)
    x0, y0 = aoi.to_crs(aoi.geometry.centroid, crs).coords[0]
    ship_utm = box(x0, y0, x0 + 120, y0 + 20).exterior.coords[::-1]  # clockwise on purpose
    from shapely.geometry import Polygon
    ship = project(Polygon(ship_utm))
    feats = [feature(aoi.geometry, _summary()),
             feature(ship, {"kind": "vessel", "length_m": 120.0, "width_m": 20.0, "at_berth": True, "score": 0.93})]
    path = tmp_path / "2023-09-08.geojson"
    write_feature_collection(path, feats)

    fc = json.loads(path.read_text())
    for f in fc["features"]:
        assert LinearRing(f["geometry"]["coordinates"][0]).is_ccw
    gdf = gpd.read_file(path)
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == 2
    assert list(gdf["kind"]) == ["aoi_summary", "vessel"]
    area = gdf.to_crs(crs).geometry.iloc[1].area
    assert area == pytest.approx(120 * 20, rel=1e-3)  # 1e-7 degree rounding
    info = pyogrio.read_info(path)
    assert info["features"] == 2 and info["geometry_type"] == "Polygon"

    summary, rest = read_detections(path)
    assert summary["aoi"] == "rajin" and len(rest) == 1
    assert shape(rest[0]["geometry"]).centroid.distance(ship.centroid) < 1e-6


def test_non_finite_values_become_null_and_bad_files_are_named(tmp_path):
    p = tmp_path / "d.geojson"
    write_feature_collection(p, [feature(box(0, 0, 1, 1), _summary() | {"teu_estimate": float("nan")})])
    assert read_detections(p)[0]["teu_estimate"] is None
    p.write_text('{"type": "FeatureCollection", "features": [{"properties": {"kind": "vessel"}}]}')
    with pytest.raises(UserError, match="first feature must be the aoi_summary"):
        read_detections(p)
