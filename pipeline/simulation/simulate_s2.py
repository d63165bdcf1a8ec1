"""SIMULATED Sentinel-2 L2A tiles (B02 B03 B04 B08 B11 reflectance + SCL).

Scene model
    Every surface is drawn at ``10 m / OVERSAMPLE`` with a reflectance
    spectrum and a texture, averaged to 10 m pixels and blurred by the
    instrument point spread function, a Gaussian of 0.45 px: together with
    the pixel's own integration that gives an MTF near 0.25 at Nyquist, in
    the range of the Sentinel-2 MSI 10 m bands (Gascon et al. 2017, Remote
    Sens. 9(6) 584). B11 (a 20 m band) is averaged to 20 m and resampled to
    10 m, like the L2A 20 m products; the SCL is also classified at 20 m.
Spectra
    Typical surface reflectances (0-1) at B02/B03/B04/B08/B11 from the ASTER/
    ECOSTRESS spectral library classes (sea water, concrete, asphalt,
    vegetation, soils, roofing); painted containers are spectrally flat
    from the visible to B11 (B11 about 1-1.3 x the visible mean, as the
    yards of the real sen2ships L2A scenes measure, see detectors/stacks.py)
    while concrete, soil and tiled roofs rise into the SWIR. Values are
    representative, not measured.
Water
    Clear coastal water plus a per-date turbidity plume near the shore and
    sun glint of per-date strength with a wave texture; a per-date aerosol
    haze adds path radiance (stronger in blue).
Clouds
    On a date drawn cloudy (``cloud_probability``), multi-scale noise is
    thresholded to a random cover; opacity mixes in a bright cloud spectrum,
    the shadow is the opacity field moved away from the sun (SSE at the
    ~02:15 UTC overpass) by the cloud height, and the SCL marks cloud
    medium/high (8/9), cirrus (10) and shadow (3) over the classes 4/5/6 of
    the clear surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from .layout import (
    ASPHALT, CONCRETE, FOREST, GRASS, N_CLASSES, OVERSAMPLE, RAIL, ROOF_BLUE, ROOF_GREY, ROOF_RED, SOIL,
    STATIC_OVERSAMPLE, WATER, Layout, smooth_noise,
)
from .render import block_mean, stack_renders, vessel_renders
from .world import DayState, rng_for

PSF_SIGMA_PX = 0.45
NOISE_SIGMA = 0.002
BANDS = ("B02", "B03", "B04", "B08", "B11")

#: Reflectance (B02, B03, B04, B08, B11) of each surface class.
CLASS_SPECTRA = np.zeros((N_CLASSES, 5), dtype=np.float32)
CLASS_SPECTRA[WATER] = (0.055, 0.045, 0.025, 0.012, 0.006)
CLASS_SPECTRA[FOREST] = (0.025, 0.050, 0.030, 0.330, 0.160)
CLASS_SPECTRA[GRASS] = (0.045, 0.075, 0.065, 0.280, 0.220)
CLASS_SPECTRA[SOIL] = (0.080, 0.110, 0.150, 0.220, 0.300)
CLASS_SPECTRA[CONCRETE] = (0.190, 0.210, 0.230, 0.270, 0.340)
CLASS_SPECTRA[ASPHALT] = (0.070, 0.080, 0.090, 0.110, 0.100)
CLASS_SPECTRA[ROOF_RED] = (0.060, 0.070, 0.150, 0.230, 0.280)
CLASS_SPECTRA[ROOF_GREY] = (0.180, 0.190, 0.200, 0.220, 0.200)
CLASS_SPECTRA[ROOF_BLUE] = (0.140, 0.120, 0.080, 0.170, 0.130)
CLASS_SPECTRA[RAIL] = (0.060, 0.065, 0.075, 0.120, 0.150)
#: Relative texture (std of a multiplicative field) of each class.
CLASS_TEXTURE = np.array([0.0, 0.18, 0.12, 0.12, 0.06, 0.06, 0.08, 0.06, 0.06, 0.10], dtype=np.float32)

#: Painted, weathered containers: red, blue, white, green, orange, yellow, grey, brown, light blue.
CONTAINER_SPECTRA = np.array([
    (0.060, 0.050, 0.140, 0.240, 0.105),
    (0.130, 0.100, 0.060, 0.120, 0.110),
    (0.400, 0.410, 0.410, 0.430, 0.400),
    (0.060, 0.110, 0.070, 0.140, 0.100),
    (0.060, 0.130, 0.300, 0.360, 0.210),
    (0.080, 0.250, 0.300, 0.340, 0.260),
    (0.180, 0.180, 0.180, 0.190, 0.200),
    (0.060, 0.070, 0.100, 0.160, 0.100),
    (0.220, 0.220, 0.180, 0.220, 0.220),
], dtype=np.float32)
CONTAINER_CUMULATIVE = np.cumsum([0.20, 0.18, 0.10, 0.10, 0.07, 0.05, 0.12, 0.10, 0.08])
#: Ship decks (rust red, green, grey, dark blue-grey, white small craft), superstructure, hatch covers.
DECK_SPECTRA = np.array([
    (0.070, 0.070, 0.130, 0.220, 0.200),
    (0.060, 0.100, 0.070, 0.160, 0.120),
    (0.140, 0.150, 0.150, 0.170, 0.150),
    (0.090, 0.090, 0.095, 0.180, 0.140),
    (0.300, 0.310, 0.310, 0.330, 0.280),
], dtype=np.float32)
HOUSE_SPECTRUM = np.array((0.330, 0.340, 0.340, 0.360, 0.300), dtype=np.float32)
HATCH_SPECTRUM = np.array((0.110, 0.115, 0.125, 0.220, 0.170), dtype=np.float32)
CLOUD_SPECTRUM = np.array((0.520, 0.520, 0.530, 0.560, 0.380), dtype=np.float32)
TURBIDITY_SPECTRUM = np.array((0.015, 0.040, 0.035, 0.012, 0.002), dtype=np.float32)
GLINT_SPECTRUM = np.array((1.0, 1.0, 1.0, 0.95, 0.80), dtype=np.float32)
HAZE_SPECTRUM = np.array((0.020, 0.012, 0.006, 0.002, 0.0), dtype=np.float32)
#: Sun at the morning overpass in Aug-Oct at 42-43 N: azimuth ~160 deg, elevation ~35-55 deg.
SUN_AZIMUTH_DEG = 160.0


@dataclass
class StaticOptical:
    """The unchanging part of an AOI at 10 m: land reflectance (premultiplied) and water share."""

    land: np.ndarray        # (5, H, W) reflectance x land fraction
    water: np.ndarray       # (H, W) water fraction
    shore_t: np.ndarray     # (H, W) metres seaward of the quay line (turbidity plume)


@lru_cache(maxsize=4)
def static_optical(layout: Layout, seed: int) -> StaticOptical:
    classes = layout.render_classes(STATIC_OVERSAMPLE, seed)
    rng = rng_for(seed, "static-s2", layout.aoi)
    h, w = classes.shape
    tex = 1.0 + CLASS_TEXTURE[classes] * (0.7 * smooth_noise(rng, (h, w), 6.0)
                                          + 0.5 * rng.standard_normal((h, w), dtype=np.float32))
    landmask = classes != WATER
    land = np.empty((5, h // STATIC_OVERSAMPLE, w // STATIC_OVERSAMPLE), dtype=np.float32)
    for b in range(5):
        land[b] = block_mean(np.where(landmask, CLASS_SPECTRA[classes, b] * tex, 0.0).astype(np.float32), STATIC_OVERSAMPLE)
    water = block_mean((~landmask).astype(np.float32), STATIC_OVERSAMPLE)
    s, t, _ = layout.hires_coords(1)
    return StaticOptical(land, water, t)


def _composite(scene: np.ndarray, win, alpha: np.ndarray, premult: np.ndarray) -> None:
    r0, r1, c0, c1 = win
    view = scene[:, r0:r1, c0:c1]
    view *= 1.0 - alpha
    view += premult


def _draw_stacks(scene: np.ndarray, layout: Layout, state: DayState, seed: int, sun_elev: float) -> None:
    for win, m in stack_renders(layout, state, seed):
        colour = np.searchsorted(CONTAINER_CUMULATIVE, m["colour_u"] * CONTAINER_CUMULATIVE[-1])
        colour = np.minimum(colour, len(CONTAINER_SPECTRA) - 1)
        height = m["tiers"] * 2.6
        # Boxes cast shadows away from the sun (to the NNW, i.e. up the image) onto the yard floor.
        res = layout.grid.resolution / OVERSAMPLE
        shade = np.zeros(m["inside"].shape, dtype=bool)
        reach = 1.0 / math.tan(math.radians(sun_elev))
        for k in range(1, 5):
            shifted = np.zeros_like(height)
            shifted[:-k, :] = height[k:, :]
            shade |= shifted - height > k * res / reach * 0.95
        top = 0.88 + 0.04 * m["tiers"]
        refl = np.where(m["occupied"][None], CONTAINER_SPECTRA[colour].transpose(2, 0, 1) * top[None],
                        CLASS_SPECTRA[ASPHALT][:, None, None] * np.where(shade, 0.45, 1.0)[None])
        cover = m["inside"].astype(np.float32)
        _composite(scene, win, block_mean(cover, OVERSAMPLE), block_mean(refl * cover[None], OVERSAMPLE))


def _draw_vessels(scene: np.ndarray, layout: Layout, state: DayState, seed: int) -> None:
    for v, win, m in vessel_renders(layout, state):
        hull = m["hull"]
        refl = np.broadcast_to(DECK_SPECTRA[v.deck_style % len(DECK_SPECTRA)][:, None, None], (5,) + m["hull"].shape).copy()
        if v.kind == "port_call":
            hatch = m["cargo"] & (np.mod(m["along"], 22.0) < 19.0)
            refl[:, hatch] = HATCH_SPECTRUM[:, None]
            if v.deck_teu > 0:
                # Containers on deck: the cargo area fills from the bow aft in
                # proportion to the load (about 3 tiers on deck, 15 m2 per TEU slot).
                cargo_area = float(m["cargo"].sum()) * (layout.grid.resolution / OVERSAMPLE) ** 2
                share = min(v.deck_teu / 3.0 * 15.0 / max(cargo_area, 1.0), 1.0)
                cut = np.quantile(m["along"][m["cargo"]], 1.0 - share) if m["cargo"].any() else np.inf
                boxes = m["cargo"] & (m["along"] >= cut)
                slot = (np.floor(m["along"] / 6.1) * 7 + np.floor(m["across"] / 2.5)).astype(np.int64)
                idx = np.abs(slot * 2654435761 + seed) % len(CONTAINER_SPECTRA)
                refl[:, boxes] = CONTAINER_SPECTRA[idx[boxes]].T
        refl[:, m["house"]] = HOUSE_SPECTRUM[:, None]
        cover = hull.astype(np.float32)
        _composite(scene, win, block_mean(cover, OVERSAMPLE), block_mean(refl * cover[None], OVERSAMPLE))


def _clouds(rng: np.random.Generator, shape, cloudy: bool):
    """Cloud opacity (0-1), thin-cirrus opacity and shadow opacity on the 10 m grid."""
    h, w = shape
    zeros = np.zeros(shape, dtype=np.float32)
    if not cloudy:
        return zeros, zeros, zeros
    cover = float(rng.uniform(0.12, 0.95))
    field_ = 0.75 * smooth_noise(rng, shape, 45.0) + 0.35 * smooth_noise(rng, shape, 10.0) \
        + 0.12 * smooth_noise(rng, shape, 2.0)
    q = float(np.quantile(field_, 1.0 - cover))
    opacity = np.clip((field_ - q) / 0.45, 0.0, 1.0) ** 0.7
    cirrus = zeros
    if rng.random() < 0.35:
        cirrus = np.clip(0.25 * (smooth_noise(rng, shape, 60.0) + 0.3), 0.0, 0.3).astype(np.float32)
    # Shadow: cloud base 800-2500 m, cast away from the sun.
    elev = math.radians(rng.uniform(35.0, 55.0))
    dist_px = rng.uniform(800.0, 2500.0) / math.tan(elev) / 10.0
    az = math.radians(SUN_AZIMUTH_DEG + 180.0)
    shift = (-dist_px * math.cos(az), dist_px * math.sin(az))      # (rows down, cols right)
    shadow = ndimage.shift(opacity, shift, order=1, mode="constant", cval=0.0)
    return opacity.astype(np.float32), cirrus, np.clip(shadow, 0.0, 1.0).astype(np.float32)


def _scl(refl: np.ndarray, opacity, cirrus, shadow) -> np.ndarray:
    """Scene classification at 20 m, resampled to 10 m like the L2A product."""
    h, w = refl.shape[1:]
    ph, pw = h + h % 2, w + w % 2
    def coarse(a):
        padded = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, ph - h), (0, pw - w)], mode="edge")
        return block_mean(padded, 2)
    r, op, ci, sh = coarse(refl), coarse(opacity), coarse(cirrus), coarse(shadow)
    green, red, nir = r[1], r[2], r[3]
    ndwi = (green - nir) / np.maximum(green + nir, 1e-6)
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    scl = np.full(green.shape, 5.0, dtype=np.float32)
    scl[ndvi > 0.4] = 4.0
    scl[ndwi > 0.0] = 6.0
    scl[ci > 0.12] = 10.0
    scl[(sh > 0.3) & (op < 0.3)] = 3.0
    scl[op > 0.3] = 8.0
    scl[op > 0.7] = 9.0
    full = np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)
    return full[:h, :w]


def _b11_20m(b11: np.ndarray) -> np.ndarray:
    h, w = b11.shape
    padded = np.pad(b11, [(0, h % 2), (0, w % 2)], mode="edge")
    coarse = ndimage.gaussian_filter(block_mean(padded, 2), PSF_SIGMA_PX, mode="nearest")
    return ndimage.zoom(coarse, 2, order=1, mode="nearest", grid_mode=True)[:h, :w]


def render_s2(layout: Layout, state: DayState, seed: int, cloudy: bool) -> tuple[dict[str, np.ndarray], dict]:
    """Bands of one SIMULATED Sentinel-2 L2A scene and its per-date conditions.

    Returns
    -------
    bands : dict
        ``B02 B03 B04 B08 B11 SCL`` as float32 (H, W) arrays; NaN reflectance
        (SCL 0) where the swath leaves no data.
    conditions : dict
        ``cloud_fraction`` (SCL 3/8/9/10 share of the AOI), ``haze``,
        ``turbidity``, ``glint``, ``nodata_fraction``.
    """
    st = static_optical(layout, seed)
    rng = rng_for(seed, "s2", layout.aoi, state.date.isoformat())
    shape = st.water.shape
    turbidity = float(rng.gamma(2.0, 0.15))
    glint = float(rng.choice([0.0, 0.0, rng.uniform(0.003, 0.02)]))
    haze = float(rng.uniform(0.0, 1.0))
    sun_elev = float(rng.uniform(35.0, 55.0))
    plume = turbidity * np.exp(-np.clip(st.shore_t, 0, None) / 700.0) * (1.0 + 0.4 * smooth_noise(rng, shape, 12.0))
    glint_field = glint * (0.6 + 0.4 * smooth_noise(rng, shape, 25.0)) ** 2 \
        * np.clip(1.0 + 0.25 * rng.standard_normal(shape, dtype=np.float32), 0.3, None)
    water = (CLASS_SPECTRA[WATER][:, None, None] + TURBIDITY_SPECTRUM[:, None, None] * np.clip(plume, 0, None)
             + GLINT_SPECTRUM[:, None, None] * glint_field[None])
    scene = (st.land * rng.uniform(0.96, 1.04) + st.water[None] * water).astype(np.float32)

    _draw_stacks(scene, layout, state, seed, sun_elev)
    _draw_vessels(scene, layout, state, seed)

    for b in range(4):
        scene[b] = ndimage.gaussian_filter(scene[b], PSF_SIGMA_PX, mode="nearest")
    scene[4] = _b11_20m(scene[4])
    scene += HAZE_SPECTRUM[:, None, None] * haze

    opacity, cirrus, shadow = _clouds(rng, shape, cloudy)
    if cloudy:
        shadow = shadow * (1.0 - opacity)
        scene *= 1.0 - 0.65 * shadow[None] * np.array([0.8, 0.9, 1.0, 1.0, 1.0], np.float32)[:, None, None]
        veil = np.clip(opacity + cirrus, 0.0, 1.0)
        scene = scene * (1.0 - veil[None]) + CLOUD_SPECTRUM[:, None, None] * veil[None]
    scene += rng.normal(0.0, NOISE_SIGMA, scene.shape).astype(np.float32)
    np.clip(scene, 0.0001, 1.2, out=scene)
    scl = _scl(scene, opacity, cirrus, shadow)

    nodata = np.zeros(shape, dtype=bool)
    if rng.random() < 0.05:
        # A granule or swath edge crosses the AOI now and then.
        cut = int(rng.uniform(0.05, 0.3) * shape[1])
        nodata[:, :cut] = True
    scene[:, nodata] = np.nan
    scl[nodata] = 0.0
    bands = {name: scene[i] for i, name in enumerate(BANDS)}
    bands["SCL"] = scl
    hidden = np.isin(scl, (3.0, 8.0, 9.0, 10.0))
    conditions = {
        "cloud_fraction": float(hidden.mean()),
        "nodata_fraction": float(nodata.mean()),
        "haze": round(haze, 3), "turbidity": round(turbidity, 3), "glint": round(glint, 4),
    }
    return bands, conditions
