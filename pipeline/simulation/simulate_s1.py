"""SIMULATED Sentinel-1 IW GRD tiles (VV, VH sigma0, linear).

Scene model
    Mean backscatter per surface class, drawn at 2.5 m and averaged to 10 m,
    then blurred to the IW GRDH resolution (about 20 m x 22 m, a Gaussian of
    0.85 px), with the azimuth/range side lobes of bright targets (a cross of
    peak level -22 dB, the Hamming-weighted PSLR of S1 IW), additive thermal
    noise (NESZ about -23 dB VV, -25 dB VH) and multiplicative gamma speckle
    of ENL 4.4 (Sentinel-1 Product Definition, IW GRDH).
Sea clutter
    VV sigma0 rises about 1.2 dB per m/s of wind from -25 dB at calm
    (a linear fit to the CMOD5 trend at 30-40 deg incidence, averaged over
    wind direction); VH lies 9 dB below VV. Each date draws a wind speed
    (gamma, mean ~5.5 m/s, capped at 10 m/s) and wind streaks of +-1 dB.
Ships
    Hull pixels 10-25 dB above the day's clutter (large ships; small craft
    8-14 dB), scatterer to scatterer variation of 3 dB, superstructure
    +4 dB; VH 6 dB below VV.
Land
    Vegetation, soil and roofs scatter diffusely (-5 to -11 dB VV); concrete
    and asphalt are smoother and darker; towns and port structures carry
    sparse very bright dihedral points; container stacks are bright.
"""

from __future__ import annotations

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

ENL = 4.4
PSF_SIGMA_PX = 0.85
SIDELOBE_DB = -22.0
NESZ_DB = {"VV": -23.0, "VH": -25.0}

#: Mean sigma0 (dB) VV, VH of each class (water is set per date).
CLASS_SIGMA0_DB = np.zeros((N_CLASSES, 2), dtype=np.float32)
CLASS_SIGMA0_DB[WATER] = (-99.0, -99.0)
CLASS_SIGMA0_DB[FOREST] = (-7.5, -13.5)
CLASS_SIGMA0_DB[GRASS] = (-10.0, -17.0)
CLASS_SIGMA0_DB[SOIL] = (-11.0, -18.0)
CLASS_SIGMA0_DB[CONCRETE] = (-11.0, -19.0)
CLASS_SIGMA0_DB[ASPHALT] = (-16.0, -24.0)
CLASS_SIGMA0_DB[ROOF_RED] = (-5.0, -12.0)
CLASS_SIGMA0_DB[ROOF_GREY] = (-4.0, -11.0)
CLASS_SIGMA0_DB[ROOF_BLUE] = (-4.0, -11.0)
CLASS_SIGMA0_DB[RAIL] = (-8.0, -15.0)
#: Share of sub-pixels that are dihedral corner reflectors (+15 dB), by class.
BRIGHT_POINT_SHARE = np.array([0, 0, 0, 0, 0.01, 0, 0.02, 0.03, 0.03, 0.01], dtype=np.float32)
STACK_SIGMA0_DB = (2.0, -6.0)


def lin(db):
    return 10.0 ** (np.asarray(db, dtype=np.float32) / 10.0)


@dataclass
class StaticRadar:
    land: np.ndarray    # (2, H, W) sigma0 x land fraction
    water: np.ndarray   # (H, W)


@lru_cache(maxsize=4)
def static_radar(layout: Layout, seed: int) -> StaticRadar:
    classes = layout.render_classes(STATIC_OVERSAMPLE, seed)
    rng = rng_for(seed, "static-s1", layout.aoi)
    h, w = classes.shape
    texture = lin(2.0 * smooth_noise(rng, (h, w), 8.0))
    bright = rng.random((h, w), dtype=np.float32) < BRIGHT_POINT_SHARE[classes]
    gain = texture * np.where(bright, lin(15.0), 1.0)
    landmask = classes != WATER
    land = np.empty((2, h // STATIC_OVERSAMPLE, w // STATIC_OVERSAMPLE), dtype=np.float32)
    for p in range(2):
        land[p] = block_mean(np.where(landmask, lin(CLASS_SIGMA0_DB[classes, p]) * gain, 0.0), STATIC_OVERSAMPLE)
    return StaticRadar(land, block_mean((~landmask).astype(np.float32), STATIC_OVERSAMPLE))


def _composite(scene, win, alpha, premult):
    r0, r1, c0, c1 = win
    view = scene[:, r0:r1, c0:c1]
    view *= 1.0 - alpha
    view += premult


def _sidelobes(img: np.ndarray) -> np.ndarray:
    """Azimuth and range side lobes of the bright targets (cross-shaped smear)."""
    k = np.arange(-24, 25)
    kernel = (lin(SIDELOBE_DB) * np.exp(-np.abs(k) / 8.0)).astype(np.float32)
    kernel[24] = 0.0
    strong = np.where(img > 0.3, img, 0.0).astype(np.float32)
    return ndimage.convolve1d(strong, kernel, axis=0, mode="constant") + \
        ndimage.convolve1d(strong, kernel, axis=1, mode="constant")


def render_s1(layout: Layout, state: DayState, seed: int) -> tuple[dict[str, np.ndarray], dict]:
    """VV and VH sigma0 of one SIMULATED Sentinel-1 IW GRD scene and its conditions (wind)."""
    st = static_radar(layout, seed)
    rng = rng_for(seed, "s1", layout.aoi, state.date.isoformat())
    shape = st.water.shape
    wind = float(min(rng.gamma(4.0, 1.4), 10.0))
    vv_sea_db = -25.0 + 1.2 * wind
    streaks = 1.0 * smooth_noise(rng, shape, 20.0)
    sea_vv = lin(vv_sea_db + streaks)
    sea = np.stack([sea_vv, sea_vv * lin(-9.0)])
    scene = (st.land + st.water[None] * sea).astype(np.float32)

    for win, m in stack_renders(layout, state, seed):
        cover = m["inside"].astype(np.float32)
        gain = np.where(m["occupied"], 1.0 + 0.3 * m["tiers"], 0.15).astype(np.float32)
        premult = np.stack([lin(STACK_SIGMA0_DB[p]) * block_mean(cover * gain, OVERSAMPLE) for p in range(2)])
        _composite(scene, win, block_mean(cover, OVERSAMPLE), premult)

    for v, win, m in vessel_renders(layout, state):
        vrng = rng_for(seed, "s1-vessel", layout.aoi, state.date.isoformat(), v.name)
        scr_db = vrng.uniform(10.0, 25.0) if v.length_m >= 60 else vrng.uniform(8.0, 14.0)
        level = lin(vv_sea_db + scr_db)
        scatter = lin(vrng.normal(0.0, 3.0, m["hull"].shape)) * np.where(m["house"], lin(4.0), 1.0)
        cover = m["hull"].astype(np.float32)
        vv = level * block_mean(cover * scatter, OVERSAMPLE)
        _composite(scene, win, block_mean(cover, OVERSAMPLE), np.stack([vv, vv * lin(-6.0)]))

    out = {}
    for p, name in enumerate(("VV", "VH")):
        img = ndimage.gaussian_filter(scene[p], PSF_SIGMA_PX, mode="nearest")
        img = img + _sidelobes(img) + lin(NESZ_DB[name])
        speckle = rng.gamma(ENL, 1.0 / ENL, shape).astype(np.float32)
        out[name] = (img * speckle).astype(np.float32)
    return out, {"wind_m_s": round(wind, 2), "sea_vv_db": round(vv_sea_db, 2)}
