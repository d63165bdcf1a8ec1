"""Sentinel-1 vessel detection on simulated scenes."""

import numpy as np
import pytest
from affine import Affine

from berthwatch.detectors.records import Vessel
from berthwatch.detectors.sar import detect_vessels_sar, water_mask_sar

ENL = 4.4


def sea(shape, mean, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_gamma(ENL, size=shape) / ENL * mean).astype(np.float32)


def blur(image, irw_px=2.0):
    """Impulse response of ~20 m (S1 IW GRDH resolution) on a 10 m grid."""
    from scipy import ndimage

    return ndimage.gaussian_filter(image, irw_px / 2.355)


def test_detects_and_measures_a_simulated_ship():
    vv = sea((400, 400), 0.03, seed=1)
    vh = sea((400, 400), 0.004, seed=2)
    hull = np.zeros((400, 400), dtype=np.float32)
    hull[200:203, 150:165] = 1.0  # 150 m x 30 m along x
    vv += blur(hull) * 3.0
    vh += blur(hull) * 0.3
    transform = Affine(10.0, 0, 500_000.0, 0, -10.0, 4_000_000.0)
    vessels = detect_vessels_sar(vv, vh, transform=transform)
    assert vessels and all(isinstance(v, Vessel) for v in vessels)
    ship = min(vessels, key=lambda v: abs(v.x - 501_575) + abs(v.y - 3_997_985))
    assert abs(ship.x - 501_575) < 20 and abs(ship.y - 3_997_985) < 20
    assert ship.length_m == pytest.approx(150, abs=30)
    assert ship.width_m < 60
    assert ship.heading_deg == pytest.approx(90, abs=15)
    assert ship.sensor == "sentinel-1-grd"
    assert 0.5 < ship.score <= 1.0
    assert ship.attributes["scr_db"] > 15
    assert {"peak_vv_db", "peak_vh_db", "mean_vv_db", "scr_db"} <= set(ship.attributes)
    # clutter alone gives (almost) nothing at the default PFA
    assert len(vessels) <= 2


def test_land_mask_removes_land_detections():
    vv = sea((300, 300), 0.03, seed=3)
    land = np.zeros(vv.shape, dtype=bool)
    land[:, :100] = True
    vv[:, :100] = sea((300, 100), 0.3, seed=4)
    vv[50:53, 20:40] = 20.0  # bright building on land
    vv[150:152, 200:212] = 1.5  # ship
    with_mask = detect_vessels_sar(vv, land_mask=land)
    assert all(v.x > 1000 for v in with_mask)
    assert any(abs(v.x - 2060) < 30 for v in with_mask)
    without = detect_vessels_sar(vv)
    assert any(v.x < 1000 for v in without)


def test_size_discrimination():
    vv = sea((300, 300), 0.03, seed=5)
    vv[100, 100] = 3.0  # single bright pixel: 10 m, below min length after blur removal
    vv[200:202, 100:115] = 1.5
    vessels = detect_vessels_sar(vv, min_length_m=50.0)
    assert all(v.length_m >= 50.0 for v in vessels)
    assert any(abs(v.x - 1075) < 30 for v in vessels)


def test_water_mask_separates_sea_and_land():
    vv = sea((200, 200), 0.02, seed=6)
    vh = sea((200, 200), 0.003, seed=7)
    vv[:, :80] = sea((200, 80), 0.3, seed=8)
    vh[:, :80] = sea((200, 80), 0.05, seed=9)
    vh[100:102, 150:160] = 1.0  # ship stays water
    for water in (water_mask_sar(vv), water_mask_sar(vv, vh)):
        assert water[:, 100:].mean() > 0.98
        assert water[:, :70].mean() < 0.02
        assert water[100, 155]
