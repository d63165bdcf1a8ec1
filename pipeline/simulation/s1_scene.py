"""A SIMULATED Sentinel-1 IW-sized scene (VV + VH sigma0) with ships, coast, islands and swath edges.

For the scale benchmark and the tests of windowed detection: a whole IW
GRDH scene is about 25,000 x 17,000 pixels at 10 m (250 km x 170 km), which
no AOI-date comes near. The scene is written window by window (bounded
memory) as a tiled GeoTIFF with bands described ``VV`` and ``VH`` (linear
sigma0, NaN outside the swath), plus a land mask on the same grid (uint8,
1 = land) as a coastline product would give.

What is in it, chosen to exercise every path of the detector rather than to
look like a particular place:

* sea clutter: gamma speckle of ENL 4.4 (IW GRDH), VV about -20 dB falling
  off across the swath (incidence angle), VH 8 dB below VV;
* land along the east side with a wiggly coast, islands, and a narrow
  channel through the land (water rings too small for the CFAR: the
  widening fallback);
* ships: rectangles of 20-400 m at random headings, 10-30 dB above the
  clutter, some in a crowded anchorage (contaminated backgrounds: the
  censoring rescans);
* no data (NaN) in slanted strips along the swath edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from ..core.atomic import atomic_path

ENL = 4.4
SEA_VV = 0.01       # -20 dB
VH_RATIO = 0.16     # VH about 8 dB below VV
LAND_VV = 0.12


@dataclass(frozen=True)
class SimShip:
    row: float
    col: float
    length_px: float
    width_px: float
    heading_rad: float
    brightness: float  # linear VV sigma0


def scene_layout(height: int, width: int, seed: int, n_ships: int | None = None):
    """Coast, islands, channel and ships of a scene (deterministic in ``seed``)."""
    rng = np.random.default_rng([seed, 1])
    n_ships = n_ships if n_ships is not None else max(8, int(height * width / 1.5e6))
    coast = 0.82 * width
    islands = [(rng.uniform(0, height), rng.uniform(0.1, 0.7) * width, rng.uniform(15, 60))
               for _ in range(max(1, int(height * width / 2e7)))]
    ships = []
    for i in range(n_ships):
        crowded = i < n_ships // 5  # an anchorage: a fifth of the ships in a small area
        if crowded:
            row, col = rng.normal(0.3 * height, 0.02 * height), rng.normal(0.6 * width, 0.02 * width)
        else:
            row, col = rng.uniform(0, height), rng.uniform(0.05, 0.8) * width
        length = rng.uniform(2, 40)
        ships.append(SimShip(row, col, length, max(1.0, length * rng.uniform(0.12, 0.2)),
                             rng.uniform(0, math.pi), SEA_VV * 10 ** (rng.uniform(1.0, 3.0))))
    return {"coast": coast, "islands": islands, "ships": ships}


def _window_bands(layout: dict, r0: int, r1: int, c0: int, c1: int, height: int, width: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.arange(r0, r1, dtype=np.float32)[:, None]
    cols = np.arange(c0, c1, dtype=np.float32)[None, :]
    coast = layout["coast"] + 0.015 * width * np.sin(rows / 1900.0) + 0.004 * width * np.sin(rows / 310.0)
    land = cols > coast
    channel = np.abs(cols - (coast + 0.05 * width + 40.0 * np.sin(rows / 500.0))) < 6  # 120 m wide
    land &= ~channel
    for ri, ci, radius in layout["islands"]:
        if ri + radius < r0 or ri - radius > r1 or ci + radius < c0 or ci - radius > c1:
            continue
        land |= (rows - ri) ** 2 + (cols - ci) ** 2 < radius ** 2
    rng = np.random.default_rng([seed, 2, r0, c0])
    shape = (r1 - r0, c1 - c0)
    mean = (SEA_VV * (1.4 - 0.8 * cols / width)).astype(np.float32) * np.ones(shape, np.float32)
    mean[land] = LAND_VV
    ship_mask = np.zeros(shape, bool)
    for s in layout["ships"]:
        reach = s.length_px / 2 + s.width_px + 1
        if s.row + reach < r0 or s.row - reach > r1 or s.col + reach < c0 or s.col - reach > c1:
            continue
        dy, dx = rows - s.row, cols - s.col
        along = dx * math.cos(s.heading_rad) + dy * math.sin(s.heading_rad)
        across = -dx * math.sin(s.heading_rad) + dy * math.cos(s.heading_rad)
        hull = (np.abs(along) <= s.length_px / 2) & (np.abs(across) <= s.width_px / 2) & ~land
        mean[hull] = s.brightness
        ship_mask |= hull
    vv = mean * (rng.standard_gamma(ENL, shape, dtype=np.float32) / ENL)
    vh = mean * VH_RATIO * (rng.standard_gamma(ENL, shape, dtype=np.float32) / ENL)
    edge = 0.015 * width + 0.01 * rows
    outside = (cols < edge) | (cols > width - 1 - edge)
    vv[outside] = np.nan
    vh[outside] = np.nan
    return vv, vh, land


def write_s1_scene(path: Path, height: int, width: int, *, seed: int = 7, n_ships: int | None = None,
                   land_path: Path | None = None, compress: str | None = None, window: int = 2048,
                   origin: tuple[float, float] = (400000.0, 4800000.0), crs: str = "EPSG:32652") -> dict:
    """Write the SIMULATED scene (and its land mask) window by window; return its layout.

    ``compress`` None writes an uncompressed tiled GeoTIFF, as Sentinel-1
    GRD measurement files are (reading it costs no decompression).
    """
    layout = scene_layout(height, width, seed, n_ships)
    transform = Affine(10.0, 0.0, origin[0], 0.0, -10.0, origin[1])
    profile = dict(driver="GTiff", width=width, height=height, crs=crs, transform=transform, tiled=True,
                   blockxsize=512, blockysize=512, BIGTIFF="IF_SAFER")
    if compress:
        profile["compress"] = compress
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", count=2, dtype="float32", nodata=np.nan,
                                                 **profile) as ds:
        ds.set_band_description(1, "VV")
        ds.set_band_description(2, "VH")
        ds.update_tags(berthwatch_simulated="true", notice="SIMULATED Sentinel-1 IW-sized scene, not evidence")
        land_ds = None
        if land_path is not None:
            land_ctx = atomic_path(land_path)
            land_tmp = land_ctx.__enter__()
            land_ds = rasterio.open(land_tmp, "w", count=1, dtype="uint8",
                                    **{**profile, "compress": "deflate"})
            land_ds.set_band_description(1, "land")
        try:
            for r0 in range(0, height, window):
                for c0 in range(0, width, window):
                    r1, c1 = min(r0 + window, height), min(c0 + window, width)
                    vv, vh, land = _window_bands(layout, r0, r1, c0, c1, height, width, seed)
                    win = Window(c0, r0, c1 - c0, r1 - r0)
                    ds.write(vv, 1, window=win)
                    ds.write(vh, 2, window=win)
                    if land_ds is not None:
                        land_ds.write(land.astype(np.uint8), 1, window=win)
        finally:
            if land_ds is not None:
                land_ds.close()
                land_ctx.__exit__(None, None, None)
    return layout
