import json

import pytest
from shapely.geometry import Point, shape
from shapely.geometry.polygon import LinearRing

from berthwatch.pipeline.core.aoi import MAX_REQUEST_PX, aoi_feature_collection, available_aois, load_aoi, resolve_aois
from berthwatch.pipeline.core.errors import UsageError, UserError


def test_shipped_aois_are_rfc7946_and_have_the_right_utm_zone(project_root):
    aois = available_aois()
    assert {"rajin", "dunai"} <= set(aois)
    for f in ["rajin", "dunai"]:
        fc = json.loads((project_root / "aois" / f"{f}.geojson").read_text())
        ring = fc["features"][0]["geometry"]["coordinates"][0]
        assert LinearRing(ring).is_ccw, "RFC 7946 wants counter-clockwise exteriors"
    assert aois["rajin"].utm_crs.to_epsg() == 32652
    assert aois["dunai"].utm_crs.to_epsg() == 32653
    assert aois["rajin"].role == "origin" and aois["dunai"].role == "destination"
    # the only source-backed berth position lies inside the Rajin AOI
    assert aois["rajin"].geometry.contains(Point(130.2826, 42.2271))
    assert aois["dunai"].geometry.contains(Point(132.33750, 42.88028))


def test_grid_is_10m_snapped_and_fits_one_request():
    for aoi in available_aois().values():
        g = aoi.grid()
        assert g.resolution == 10.0
        assert g.transform.c % 10 == 0 and g.transform.f % 10 == 0
        assert 0 < g.width <= MAX_REQUEST_PX and 0 < g.height <= MAX_REQUEST_PX
        utm = aoi.to_crs(aoi.geometry, g.crs)
        left, bottom, right, top = g.bounds
        minx, miny, maxx, maxy = utm.bounds
        assert left <= minx and bottom <= miny and right >= maxx and top >= maxy
        assert right - maxx < 10 and top - maxy < 10


def _write(tmp_path, geom, props=None, extra=()):
    props = {"id": "test", "name": "Test", "country": "XX", "role": "other", "notes": "unit test"} \
        if props is None else props
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": props, "geometry": geom}, *extra]}
    p = tmp_path / "test.geojson"
    p.write_text(json.dumps(fc))
    return p


def _box(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def test_large_aoi_is_split_into_request_tiles(tmp_path):
    aoi = load_aoi(_write(tmp_path, _box(10.0, 54.0, 10.5, 54.3)))  # ~33 x 33 km
    g = aoi.grid()
    parts = g.split()
    assert len(parts) == 4
    assert sum(p.width * p.height for _, _, p in parts) == g.width * g.height
    assert all(p.width <= MAX_REQUEST_PX and p.height <= MAX_REQUEST_PX for _, _, p in parts)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"type": "Feature"}), "FeatureCollection"),
        (json.dumps({"type": "FeatureCollection", "features": []}), "no features"),
    ],
)
def test_unparseable_files_fail_with_one_line(tmp_path, content, message):
    p = tmp_path / "bad.geojson"
    p.write_text(content)
    with pytest.raises(UserError) as exc:
        load_aoi(p)
    text = str(exc.value)
    assert message in text and str(p) in text and "\n" not in text


@pytest.mark.parametrize(
    "geom, props, message",
    [
        ({"type": "Point", "coordinates": [130.3, 42.2]}, None, "Polygon"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, None, "not a valid polygon"),
        (_box(42.215, 130.27, 42.25, 130.315), None, "lat/lon"),
        (_box(10.0, 54.0, 11.0, 54.5), None, "exceeds the 50 km"),
        (_box(10.0, 54.0, 10.1, 54.1), {"id": "x", "name": "X"}, "lacks properties"),
        (_box(10.0, 54.0, 10.1, 54.1), {"id": "x", "name": "X", "country": "X", "role": "port", "notes": "n"}, "role"),
        (_box(10.0, 54.0, 10.1, 54.1), {"id": "Bad Id", "name": "X", "country": "X", "role": "other", "notes": "n"},
         "lower-case"),
    ],
)
def test_invalid_aois_fail_with_one_line(tmp_path, geom, props, message):
    p = _write(tmp_path, geom, props)
    with pytest.raises(UserError) as exc:
        load_aoi(p)
    assert message in str(exc.value) and str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_zones_are_optional_and_validated(tmp_path):
    berth = {"type": "Feature", "properties": {"zone": "berth"}, "geometry": _box(10.02, 54.02, 10.03, 54.03)}
    aoi = load_aoi(_write(tmp_path, _box(10.0, 54.0, 10.1, 54.1), extra=[berth]))
    assert len(aoi.zones_of("berth")) == 1 and aoi.zones_of("yard") == []
    roundtrip = aoi_feature_collection(aoi)
    assert shape(roundtrip["features"][1]["geometry"]).equals(aoi.zones[0].geometry)
    bad = {"type": "Feature", "properties": {"zone": "parking"}, "geometry": _box(10.02, 54.02, 10.03, 54.03)}
    with pytest.raises(UserError, match="zone"):
        load_aoi(_write(tmp_path, _box(10.0, 54.0, 10.1, 54.1), extra=[bad]))


def test_resolve_accepts_ids_comma_lists_and_paths(tmp_path):
    p = _write(tmp_path, _box(10.0, 54.0, 10.1, 54.1))
    got = resolve_aois(["rajin,dunai", str(p), "rajin"])
    assert [a.id for a in got] == ["rajin", "dunai", "test"]
    assert {a.id for a in resolve_aois(None)} >= {"rajin", "dunai"}
    with pytest.raises(UsageError, match="unknown AOI 'atlantis'"):
        resolve_aois(["atlantis"])
