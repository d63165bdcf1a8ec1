"""Water masks: NDWI/MNDWI, SCL validity, time-series reference, berth filling."""

import numpy as np
import pytest

from berthwatch.detectors.water import (
    reference_water_mask,
    sea_domain,
    water_mask_optical,
)


def _scene(h=40, w=40):
    green = np.full((h, w), 0.06, np.float32)
    nir = np.full((h, w), 0.01, np.float32)
    swir = np.full((h, w), 0.005, np.float32)
    return green, nir, swir


def test_ndwi_separates_water_land_and_nodata():
    green, nir, swir = _scene()
    nir[:, :10] = 0.30  # land: NIR-bright
    green[:, :10] = 0.08
    green[0, 20] = 0.0  # nodata
    nir[0, 20] = 0.0
    green[1, 20] = np.nan
    water, valid = water_mask_optical(green, nir, swir)
    assert water[5, 30] and not water[5, 5]
    assert not valid[0, 20] and not valid[1, 20] and not water[0, 20]
    assert valid[5, 5]


def test_scl_clouds_shadow_defective_are_invalid():
    green, nir, swir = _scene(4, 4)
    scl = np.array([[6, 8, 9, 10], [3, 1, 0, 11], [6, 6, 6, 6], [6, 6, 6, 6]])
    water, valid = water_mask_optical(green, nir, swir, scl=scl, cloud_buffer_m=0)
    assert valid[0, 0] and water[0, 0]
    assert not valid[0, 1:].any() and not valid[1, :].any()
    _, valid_snow = water_mask_optical(green, nir, swir, scl=scl, snow_valid=True, cloud_buffer_m=0)
    assert valid_snow[1, 3]


def test_cloud_edges_are_buffered_but_nodata_is_not():
    green, nir, swir = _scene(40, 40)
    scl = np.full((40, 40), 6)
    scl[18:22, 18:22] = 9  # a small cloud
    scl[0:2, :] = 0  # a no-data edge
    _, valid = water_mask_optical(green, nir, swir, scl=scl, cloud_buffer_m=90.0, pixel_size=10.0)
    # 9 px (90 m) around the cloud are out; just beyond them the water is seen
    assert not valid[20, 20 + 2 + 9 - 1] and valid[20, 20 + 2 + 9 + 1]
    # the no-data edge is not grown
    assert not valid[1, 5] and valid[2, 5]


def test_mndwi_rejects_bright_swir_surface():
    green, nir, swir = _scene(2, 2)
    # Bright roof: green slightly above NIR (NDWI > 0) but SWIR-bright.
    green[0, 0], nir[0, 0], swir[0, 0] = 0.30, 0.28, 0.45
    water, _ = water_mask_optical(green, nir, swir)
    assert not water[0, 0] and water[1, 1]


def test_reference_mask_keeps_berth_occupied_on_some_dates():
    t, h, w = 5, 6, 6
    water = np.ones((t, h, w), bool)
    valid = np.ones((t, h, w), bool)
    water[:, :, 0] = False  # quay, always land
    water[:2, 2, 2] = False  # berth occupied on 2 of 5 dates
    water[:4, 4, 4] = False  # mostly land
    valid[1:, 5, 5] = False  # one valid obs only
    ref = reference_water_mask(water, valid, min_fraction=0.5)
    assert ref[2, 2] and not ref[4, 4] and not ref[0, 0]
    assert ref[5, 5]
    assert not reference_water_mask(water, valid, min_observations=2)[5, 5]
    with pytest.raises(ValueError):
        reference_water_mask(water[0], valid[0])


def _harbour():
    """120 x 120 px basin (10 m) with land on the left, a ship alongside the
    quay, a ship at anchor, and a 400 m long pier."""
    water = np.ones((120, 120), bool)
    water[:, :20] = False  # land
    water[30:50, 20:24] = False  # berthed ship 200 x 40 m touching the quay
    water[80:84, 60:75] = False  # ship at anchor
    water[100:104, 20:100] = False  # pier, 800 m long, 40 m wide
    return water


def test_sea_domain_fills_ships_not_land():
    water = _harbour()
    domain = sea_domain(water, close_radius_m=60.0, pixel_size=10.0)
    # A disk closing rounds the inner corners where hull meets quay.
    assert domain[30:50, 20:24].mean() >= 0.9, "berthed ship must be inside the sea domain"
    assert domain[33:47, 20:24].all()
    assert domain[80:84, 60:75].all(), "ship at anchor must be inside the sea domain"
    assert not domain[:, :15].any(), "land stays land"
    assert domain[60, 60]


def test_dark_harbour_water_under_haze_is_water():
    """Haze lifts every band by ~0.05: sheltered water keeps NDWI ~0 and
    MNDWI < 0, but is the darkest surface in NIR and SWIR (sen2ships Algiers)."""
    haze = 0.05
    green = np.full((20, 20), 0.002 + haze, np.float32)
    nir = np.full((20, 20), 0.002 + haze, np.float32)
    swir = np.full((20, 20), 0.008 + haze, np.float32)
    green[:, :8], nir[:, :8], swir[:, :8] = 0.12, 0.25 + haze, 0.25 + haze  # land
    green[5, 15], nir[5, 15], swir[5, 15] = 0.10 + haze, 0.12 + haze, 0.12 + haze  # hull
    water, _ = water_mask_optical(green, nir, swir)
    assert water[:, 8:].sum() == 20 * 12 - 1 and not water[5, 15]
    assert not water[:, :8].any()
    no_haze_fix, _ = water_mask_optical(green, nir, swir, dark_object_percentile=None, dark_water_reflectance=0.0)
    assert not no_haze_fix[10, 12], "the test scene must need the haze correction"
