"""Water masks from Sentinel-2 reflectance.

Water is mapped with the Normalised Difference Water Index (NDWI, McFeeters
1996) and, when the short-wave infrared band is available, the Modified NDWI
(MNDWI, Xu 2006). A reference mask built from a time series counts a pixel as
water when it is water on most clear dates, so a ship that is berthed on some
dates does not turn its berth into land. For a single scene,
:func:`fill_berthed_vessels` closes vessel-sized bays of the water body.

References
----------
McFeeters, S. K. (1996). The use of the Normalized Difference Water Index
(NDWI) in the delineation of open water features. International Journal of
Remote Sensing, 17(7), 1425-1432.

Xu, H. (2006). Modification of normalised difference water index (NDWI) to
enhance open water features in remotely sensed imagery. International Journal
of Remote Sensing, 27(14), 3025-3033.

Soille, P. (2003). Morphological Image Analysis, 2nd ed., Springer
(closing, reconstruction, hole filling).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Sentinel-2 L2A scene classification codes that hide the surface.
SCL_NO_DATA = 0
SCL_SATURATED_OR_DEFECTIVE = 1
SCL_CLOUD_SHADOW = 3
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_THIN_CIRRUS = 10
SCL_SNOW_ICE = 11
SCL_INVALID = (
    SCL_NO_DATA,
    SCL_SATURATED_OR_DEFECTIVE,
    SCL_CLOUD_SHADOW,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_HIGH,
    SCL_THIN_CIRRUS,
)


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) / (a + b)``, NaN where the sum is not positive."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / total
    out[~(total > 0)] = np.nan
    return out


def water_mask_optical(
    green: np.ndarray,
    nir: np.ndarray,
    swir: np.ndarray | None = None,
    scl: np.ndarray | None = None,
    ndwi_threshold: float = 0.0,
    mndwi_threshold: float = -0.1,
    snow_valid: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Water and valid-observation masks of one Sentinel-2 scene.

    A pixel is water when NDWI = (G - NIR) / (G + NIR) exceeds
    ``ndwi_threshold`` (McFeeters 1996) and, when ``swir`` is given,
    MNDWI = (G - SWIR) / (G + SWIR) exceeds ``mndwi_threshold`` (Xu 2006).
    The NDWI threshold of 0 is McFeeters' physical boundary (water absorbs
    NIR more than green); it holds in hazy scenes where open water sits at
    NDWI 0.05-0.1 while vessels, quays and vegetation are below 0. The MNDWI
    test is lenient (-0.1) because its job is only to reject bright built-up
    surfaces and snow that NDWI alone lets through; glint lowers MNDWI of
    clean water to about 0.

    Parameters
    ----------
    green, nir : (H, W) float ndarray
        B03 and B08 surface reflectance (0-1).
    swir : (H, W) float ndarray, optional
        B11 surface reflectance on the same grid.
    scl : (H, W) int ndarray, optional
        L2A scene classification. Codes 0 (no data), 1 (saturated or
        defective), 3 (cloud shadow), 8, 9 (cloud), 10 (thin cirrus) are
        invalid; 11 (snow/ice) is invalid unless ``snow_valid`` because sea
        ice and snow hide whether a berth is occupied.
    ndwi_threshold, mndwi_threshold : float
        Index thresholds (dimensionless).
    snow_valid : bool
        Treat SCL snow/ice as a valid observation.

    Returns
    -------
    water, valid : (H, W) bool ndarray
        ``water`` is False wherever ``valid`` is False.
    """
    green = np.asarray(green, dtype=np.float32)
    nir = np.asarray(nir, dtype=np.float32)
    valid = np.isfinite(green) & np.isfinite(nir) & (green > 0) & (nir > 0)
    # NIR over clean deep water can reach exactly 0 after atmospheric
    # correction; only treat it as nodata when green is also 0.
    valid |= np.isfinite(green) & np.isfinite(nir) & (green > 0) & (nir == 0)
    ndwi = normalized_difference(green, nir)
    with np.errstate(invalid="ignore"):
        water = ndwi > ndwi_threshold
    if swir is not None:
        swir = np.asarray(swir, dtype=np.float32)
        valid &= np.isfinite(swir)
        mndwi = normalized_difference(green, swir)
        with np.errstate(invalid="ignore"):
            water &= mndwi > mndwi_threshold
    if scl is not None:
        scl = np.asarray(scl)
        bad = list(SCL_INVALID) + ([] if snow_valid else [SCL_SNOW_ICE])
        valid &= ~np.isin(scl, bad)
    water &= valid
    return water, valid


def reference_water_mask(
    water_stack: np.ndarray,
    valid_stack: np.ndarray,
    min_fraction: float = 0.5,
    min_observations: int = 1,
) -> np.ndarray:
    """Water in at least ``min_fraction`` of a pixel's valid observations.

    Parameters
    ----------
    water_stack, valid_stack : (T, H, W) bool ndarray
        Per-date water and valid masks from :func:`water_mask_optical`.
    min_fraction : float
        Share of valid dates on which the pixel must be water. 0.5 keeps a
        berth that is occupied on fewer than half the dates as water.
    min_observations : int
        Pixels with fewer valid dates are not water (unknown).

    Returns
    -------
    (H, W) bool ndarray
    """
    water_stack = np.asarray(water_stack, dtype=bool)
    valid_stack = np.asarray(valid_stack, dtype=bool)
    if water_stack.shape != valid_stack.shape or water_stack.ndim != 3:
        raise ValueError("water_stack and valid_stack must both be (T, H, W)")
    n_valid = valid_stack.sum(axis=0)
    n_water = (water_stack & valid_stack).sum(axis=0)
    enough = n_valid >= max(int(min_observations), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(enough, n_water / np.maximum(n_valid, 1), 0.0)
    return enough & (frac >= min_fraction)


def disk(radius_px: float) -> np.ndarray:
    """Boolean disk structuring element of the given radius in pixels."""
    r = int(np.ceil(radius_px))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy) <= radius_px * radius_px + 1e-9


def _closing_padded(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    # Pad by replicating the edge so the image border neither creates nor
    # erases water (scipy's default border would erode the closing there).
    r = max(structure.shape) // 2 + 1
    padded = np.pad(mask, r, mode="edge")
    closed = ndimage.binary_closing(padded, structure=structure)
    return closed[r:-r, r:-r]


def water_body(
    water: np.ndarray, pixel_size: float = 10.0, min_area_m2: float = 50_000.0
) -> np.ndarray:
    """Water components of at least ``min_area_m2`` (drops ponds, shadows)."""
    labels, n = ndimage.label(water)
    if n == 0:
        return np.zeros_like(water, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = sizes * pixel_size * pixel_size >= min_area_m2
    return keep[labels]


def line_footprint(length_px: float, angle_deg: float) -> np.ndarray:
    """Boolean line structuring element (Bresenham-like sampling), odd size."""
    half = max(int(np.ceil(length_px / 2.0)), 1)
    t = np.linspace(-length_px / 2.0, length_px / 2.0, int(4 * length_px) + 3)
    a = np.radians(angle_deg)
    rr = np.round(-t * np.cos(a)).astype(int) + half
    cc = np.round(t * np.sin(a)).astype(int) + half
    fp = np.zeros((2 * half + 1, 2 * half + 1), bool)
    fp[rr, cc] = True
    return fp


def fill_berthed_vessels(
    water: np.ndarray,
    max_width_m: float = 60.0,
    pixel_size: float = 10.0,
    max_length_m: float = 300.0,
    n_directions: int = 8,
    min_water_area_m2: float = 50_000.0,
    max_enclosed_area_m2: float = 40_000.0,
) -> np.ndarray:
    """Single-scene sea domain: the water body with vessel-shaped gaps filled.

    A ship alongside a straight quay is, in a water mask, a bump of the shore
    one beam deep and one ship long. A disk closing of radius ``max_width_m``
    (Soille 2003) fills short bumps and the gaps between ships moored side by
    side, but not a 200 m hull along a quay (a disk fits inside it from the
    land side). The hull does have water at both ends along its axis, so the
    union of closings with line segments of length ``max_length_m`` in
    ``n_directions`` orientations (directional closing, Soille 2003 ch. 8)
    fills it, while land wider than ``max_length_m`` in every direction, and
    straight quay faces, stay untouched. Holes enclosed by water (vessels at
    anchor) are filled when smaller than ``max_enclosed_area_m2``; larger
    islands stay land.

    Piers and breakwaters narrower than ``max_length_m`` are filled too:
    geometry alone cannot tell a 40 m wide jetty from a 40 m wide hull. The
    optical detector rejects them by size (longer than any ship, wider than
    a beam), shape, and by removing thin structures attached to land.

    Parameters
    ----------
    water : (H, W) bool ndarray
        Water mask of one scene.
    max_width_m : float
        Radius of the disk closing (about the beam of the widest ships;
        Valemax ore carriers are 65 m wide).
    pixel_size : float
        Pixel size in metres.
    max_length_m : float
        Length of the line closings: the longest berthed hull that is filled.
    n_directions : int
        Orientations of the line closings, evenly spaced over 180 degrees.
    min_water_area_m2 : float
        Water components smaller than this are ignored.
    max_enclosed_area_m2 : float
        Largest enclosed non-water hole filled (400 m x 65 m is 26 000 m2).

    Returns
    -------
    (H, W) bool ndarray
        Water plus filled vessel gaps. ``result & ~water`` are candidate
        vessel pixels.
    """
    water = np.asarray(water, dtype=bool)
    body = water_body(water, pixel_size, min_water_area_m2)
    if not body.any():
        return body
    closed = _closing_padded(body, disk(max_width_m / pixel_size)) | body
    if max_length_m > 0 and n_directions > 0:
        length_px = max_length_m / pixel_size
        for angle in np.arange(n_directions) * 180.0 / n_directions:
            closed |= _closing_padded(body, line_footprint(length_px, angle))
    holes = ndimage.binary_fill_holes(closed) & ~closed
    labels, n = ndimage.label(holes)
    if n:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        small = sizes * pixel_size * pixel_size <= max_enclosed_area_m2
        small[0] = False
        closed |= small[labels]
    return closed
