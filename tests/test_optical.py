"""Optical vessel detector and berth helpers on synthetic Sentinel-2 scenes."""

import numpy as np
from affine import Affine
from shapely.geometry import Point, box
from skimage.draw import polygon as draw_polygon

from berthwatch.detectors.berth import flag_at_berth, merge_sensor_duplicates
from berthwatch.detectors.optical import detect_vessels_optical
from berthwatch.detectors.records import Vessel

PX = 10.0
TRANSFORM = Affine(PX, 0, 500_000.0, 0, -PX, 4_000_000.0)
WATER = dict(B02=0.04, B03=0.05, B04=0.02, B08=0.01, B11=0.005)
LAND = dict(B02=0.08, B03=0.10, B04=0.12, B08=0.25, B11=0.28)
SHIP = dict(B02=0.09, B03=0.10, B04=0.13, B08=0.16, B11=0.16)
CLOUD = dict(B02=0.45, B03=0.46, B04=0.47, B08=0.50, B11=0.35)
GLINT = dict(B02=0.12, B03=0.12, B04=0.12, B08=0.115, B11=0.11)


def _paint(bands, mask, spectrum):
    for k, v in spectrum.items():
        bands[k][mask] = v


def _basin(h=150, w=150):
    bands = {k: np.full((h, w), v, np.float32) for k, v in WATER.items()}
    rng = np.random.default_rng(0)
    for k in bands:
        bands[k] += rng.normal(0, 0.002, (h, w)).astype(np.float32)
        bands[k] = np.clip(bands[k], 1e-4, None)
    land = np.zeros((h, w), bool)
    land[:, :20] = True  # quay along the west side
    _paint(bands, land, LAND)
    return bands, land


def _centres_rc(vessels):
    inv = ~TRANSFORM
    return [tuple(reversed(inv @ (v.x, v.y))) for v in vessels]


def _found(vessels, r, c, tol=3.0):
    return [v for v, (vr, vc) in zip(vessels, _centres_rc(vessels)) if abs(vr - r) <= tol and abs(vc - c) <= tol]


def test_harbour_scene_single_scene_mode():
    bands, land = _basin()
    berthed = np.zeros_like(land)
    berthed[20:40, 20:24] = True  # 200 x 40 m alongside the quay
    _paint(bands, berthed, SHIP)
    pair = np.zeros_like(land)
    pair[60:78, 70:73] = True  # two 180 x 30 m hulls side by side ...
    pair[60:78, 74:77] = True  # ... with a 1 px dark gap
    _paint(bands, pair, SHIP)
    pier = np.zeros_like(land)
    pier[120:124, 20:120] = True  # 1 km long, 40 m wide pier
    _paint(bands, pier, LAND)
    cloud = np.zeros_like(land)
    cloud[20:45, 100:130] = True
    _paint(bands, cloud, CLOUD)
    glint = np.zeros_like(land)
    glint[90:100, 100:104] = True
    _paint(bands, glint, GLINT)

    vessels = detect_vessels_optical(bands, TRANSFORM, pixel_size=PX)

    assert _found(vessels, 29.5, 21.5), "berthed ship not found"
    berthed_v = _found(vessels, 29.5, 21.5)[0]
    assert abs(berthed_v.length_m - 200) <= 20 and abs(berthed_v.width_m - 40) <= 20
    assert _found(vessels, 68.5, 71.0, tol=1.0) and _found(vessels, 68.5, 75.0, tol=1.0), "side-by-side pair not split"
    assert not _found(vessels, 121.5, 70, tol=30), "pier counted as a vessel"
    assert not _found(vessels, 32, 115, tol=15), "cloud counted as a vessel"
    assert not _found(vessels, 94.5, 101.5, tol=5), "glint counted as a vessel"
    assert len(vessels) == 3
    for v in vessels:
        assert v.sensor == "sentinel-2-l2a" and 0 <= v.score <= 1
        assert v.attributes["B08"] > 0.1


def test_reference_water_mode_finds_ship_on_usual_water():
    bands, land = _basin()
    ship = np.zeros_like(land)
    ship[50:70, 20:24] = True
    _paint(bands, ship, SHIP)
    vessels = detect_vessels_optical(bands, TRANSFORM, reference_water=~land, pixel_size=PX)
    assert len(vessels) == 1 and _found(vessels, 59.5, 21.5)


FOAM = dict(B02=0.30, B03=0.28, B04=0.25, B08=0.15, B11=0.01)
WEED = dict(B02=0.03, B03=0.06, B04=0.03, B08=0.35, B11=0.15)


def test_reference_water_mode_rejects_cloud_glint_foam_and_weed_by_rule():
    bands, land = _basin()
    ship = np.zeros_like(land)
    ship[50:70, 20:24] = True  # berthed, 200 x 40 m
    _paint(bands, ship, SHIP)
    dark_hull = np.zeros_like(land)
    dark_hull[30:45, 60:63] = True  # 150 x 30 m black hull at anchor: darker than the water
    _paint(bands, dark_hull, dict(B02=0.025, B03=0.025, B04=0.025, B08=0.03, B11=0.025))
    for spectrum, (r, c) in ((CLOUD, (100, 60)), (GLINT, (100, 100)), (FOAM, (130, 60)), (WEED, (130, 100))):
        patch = np.zeros_like(land)
        patch[r:r + 10, c:c + 4] = True
        _paint(bands, patch, spectrum)
    vessels = detect_vessels_optical(bands, TRANSFORM, reference_water=~land, pixel_size=PX)
    assert _found(vessels, 59.5, 21.5) and _found(vessels, 37.0, 61.0), "ships missed"
    assert len(vessels) == 2, "a cloud, glint, foam or weed patch was kept"


def test_rotated_ship_length_and_heading():
    bands, land = _basin()
    # 250 m x 40 m hull, long axis 30 degrees clockwise from north.
    L, W, heading = 25.0, 4.0, np.radians(30.0)
    cr, cc = 75.0, 90.0
    ax = np.array([-np.cos(heading), np.sin(heading)])  # (row, col) along the axis
    pe = np.array([np.sin(heading), np.cos(heading)])
    corners = [np.array([cr, cc]) + s * L / 2 * ax + t * W / 2 * pe for s, t in [(1, 1), (1, -1), (-1, -1), (-1, 1)]]
    rr, cc_ = draw_polygon([p[0] for p in corners], [p[1] for p in corners], land.shape)
    m = np.zeros_like(land)
    m[rr, cc_] = True
    _paint(bands, m, SHIP)
    vessels = detect_vessels_optical(bands, TRANSFORM, pixel_size=PX)
    assert len(vessels) == 1
    v = vessels[0]
    assert abs(v.length_m - 250) <= 25
    assert abs(v.width_m - 40) <= 20
    assert min(abs(v.heading_deg - 30.0), 180 - abs(v.heading_deg - 30.0)) <= 5


def _vessel(x, y, length=100.0, sensor="sentinel-2-l2a", score=0.8):
    return Vessel(outline=box(x - 5, y - length / 2, x + 5, y + length / 2), x=x, y=y, length_m=length,
                  width_m=10.0, heading_deg=0.0, area_m2=length * 10, score=score, sensor=sensor)


def test_flag_at_berth_by_land_distance_and_zone():
    land = np.zeros((50, 50), bool)
    land[:, :10] = True
    t = Affine(10, 0, 0, 0, -10, 500)
    near = _vessel(x=125.0, y=250.0)  # outline edge at x=120, land ends at 100
    far = _vessel(x=355.0, y=250.0)
    zoned = _vessel(x=405.0, y=250.0)
    out = flag_at_berth([near, far, zoned], land, t, distance_m=30.0, berth_zones=[Point(405, 250).buffer(20)])
    assert [v.at_berth for v in out] == [True, False, True]
    assert out[0].attributes["distance_to_land_m"] <= 30 < out[1].attributes["distance_to_land_m"]
    assert not near.at_berth  # input untouched


def test_merge_sensor_duplicates_keeps_optical_outline():
    s2 = [_vessel(0, 0, 200), _vessel(1000, 0, 100)]
    s1 = [_vessel(40, 10, 230, sensor="sentinel-1-grd", score=0.95), _vessel(1030, 0, 400, sensor="sentinel-1-grd"),
          _vessel(5000, 0, 100, sensor="sentinel-1-grd")]
    merged = merge_sensor_duplicates(s1, s2, max_distance_m=100.0)
    assert len(merged) == 4  # one pair; the 100 vs 400 m pair is rejected on length
    pair = merged[0]
    assert pair.sensor == "sentinel-2-l2a" and (pair.x, pair.y) == (0, 0)  # S2 outline and position
    assert pair.length_m == (200 + 230) / 2  # mean of the two measurements
    assert pair.attributes["sensors"] == ["sentinel-2-l2a", "sentinel-1-grd"]
    assert pair.score == 0.95


def test_scene_standardise_removes_a_scene_wide_shift_but_not_size():
    from berthwatch.detectors.optical import FEATURE_NAMES, SCENE_RELATIVE, scene_standardise

    rng = np.random.default_rng(0)
    f = rng.normal(size=(400, len(FEATURE_NAMES)))
    hazy = f.copy()
    rel = [FEATURE_NAMES.index(n) for n in SCENE_RELATIVE]
    hazy[:, rel] = 3.0 * hazy[:, rel] + 5.0  # a port where every candidate is brighter and more contrasted
    prior = (np.zeros(len(FEATURE_NAMES)), np.ones(len(FEATURE_NAMES)))  # the clear port's scale
    z, z_hazy = scene_standardise(f, None, *prior), scene_standardise(hazy, None, *prior)
    # 400 candidates outweigh the prior (20): the same objects get nearly the same inputs.
    assert np.abs(z_hazy[:, rel] - z[:, rel]).max() < 0.3
    assert np.median(np.abs(hazy[:, rel] - f[:, rel])) > 3.0  # unlike the raw features
    size = [FEATURE_NAMES.index(n) for n in ("log_area", "log_length", "log_elongation", "fill_ratio")]
    assert np.array_equal(z_hazy[:, size], hazy[:, size])


def test_scene_standardise_with_few_candidates_keeps_the_training_scale():
    from berthwatch.detectors.optical import FEATURE_CENTRE, FEATURE_NAMES, FEATURE_SCALE, SCENE_RELATIVE
    from berthwatch.detectors.optical import scene_standardise

    rel = [FEATURE_NAMES.index(n) for n in SCENE_RELATIVE]
    one = (FEATURE_CENTRE + 2.0 * FEATURE_SCALE)[None]
    alone = scene_standardise(one, np.zeros(1, bool))  # no candidate describes the scene: the prior alone
    np.testing.assert_allclose(alone[0, rel], 2.0)
    shrunk = scene_standardise(one)  # one candidate against a prior of 20
    assert np.all(np.abs(shrunk[0, rel] - 2.0 * 20 / 21) < 0.2)
