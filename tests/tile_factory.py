"""Synthetic, contract-conforming tiles for tests and benchmarks.

A small harbour drawn on any AOI grid: land along the top with a container
yard, a quay face, a pier, and a basin of open water below. Ships, clouds and
no-data patches are placed by the caller, so a test states exactly what is in
the scene. Tiles and STAC items are written with :mod:`pipeline.core.contracts`
(COG on the AOI grid, named float32 bands, ``berthwatch:simulated`` true), so
anything the fetch stage could have written can be faked here.

The radiometry is physical enough for the detectors: Sentinel-2 water is dark
in NIR (NDWI > 0), land and ships are bright in NIR (NDWI < 0), the yard is a
multi-coloured texture; Sentinel-1 sigma0 has gamma speckle (ENL 4.4), sea
clutter at about -20 dB VV, ships at +5 dB.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from berthwatch.pipeline.core.aoi import Grid
from berthwatch.pipeline.core.contracts import S1, S2, tile_path, write_item, write_tile

#: Scene classification codes used below (Sentinel-2 L2A SCL).
SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER, SCL_CLOUD_HIGH = 4, 5, 6, 9

S2_WATER = {"B02": 0.060, "B03": 0.050, "B04": 0.030, "B08": 0.020, "B11": 0.010}
S2_LAND = {"B02": 0.080, "B03": 0.100, "B04": 0.120, "B08": 0.250, "B11": 0.220}
S2_SHIP = {"B02": 0.180, "B03": 0.190, "B04": 0.200, "B08": 0.240, "B11": 0.150}
S2_CLOUD = {"B02": 0.550, "B03": 0.550, "B04": 0.560, "B08": 0.580, "B11": 0.350}
#: Linear sigma0 (VV, VH) of sea, land and ship.
S1_SEA = (0.010, 0.0015)
S1_LAND = (0.150, 0.040)
S1_SHIP = (3.000, 0.800)
S1_ENL = 4.4


@dataclass(frozen=True)
class Ship:
    """A ship as a pixel rectangle: top-left ``row``, ``col`` and size in pixels."""

    row: int
    col: int
    length_px: int
    width_px: int
    along_rows: bool = False  # True: the long side runs north-south

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        h, w = (self.length_px, self.width_px) if self.along_rows else (self.width_px, self.length_px)
        m = np.zeros(shape, bool)
        m[self.row:self.row + h, self.col:self.col + w] = True
        return m

    @property
    def length_m(self) -> float:
        return self.length_px * 10.0


@dataclass(frozen=True)
class Harbour:
    """Masks of a synthetic harbour on a grid."""

    land: np.ndarray
    yard: np.ndarray
    quay_row: int  # first water row below the quay face
    pier_cols: tuple[int, int]
    pier_end_row: int

    def berth_ship(self, col: int, length_px: int = 15, width_px: int = 3) -> Ship:
        """A ship moored alongside the quay face (touching it) starting at ``col``."""
        return Ship(self.quay_row, col, length_px, width_px)

    def anchored_ship(self, length_px: int = 20, width_px: int = 3, row_frac: float = 0.8,
                      col_frac: float = 0.3) -> Ship:
        """A ship in open water, far from land."""
        h, w = self.land.shape
        return Ship(int(h * row_frac), int(w * col_frac), length_px, width_px)


def harbour(grid: Grid) -> Harbour:
    """Land on the top 35 % of the grid, a pier at 60-64 % of the width reaching
    down to 55 % of the height, a container yard on land behind the quay, water
    elsewhere."""
    h, w = grid.height, grid.width
    quay = int(h * 0.35)
    land = np.zeros((h, w), bool)
    land[:quay] = True
    pier = (int(w * 0.60), int(w * 0.64))
    pier_end = int(h * 0.55)
    land[quay:pier_end, pier[0]:pier[1]] = True
    yard = np.zeros((h, w), bool)
    yard[int(h * 0.15):quay - 3, int(w * 0.08):int(w * 0.40)] = True  # behind a 30 m quay apron
    return Harbour(land, yard, quay, pier, pier_end)


def s2_bands(grid: Grid, hb: Harbour, ships=(), clouds=(), nodata=(), seed: int = 0) -> dict[str, np.ndarray]:
    """Sentinel-2 L2A bands (reflectance) and SCL of the harbour.

    ``clouds`` and ``nodata`` are boolean masks (or slices tuples) painted last.
    """
    rng = np.random.default_rng(seed)
    shape = (grid.height, grid.width)
    out = {}
    for b in S2_WATER:
        img = np.where(hb.land, S2_LAND[b], S2_WATER[b]).astype(np.float32)
        img += rng.normal(0.0, 0.002, shape).astype(np.float32)
        out[b] = img
    # Yard: per-pixel random container colours (red, blue, white, grey; NDWI and NDVI
    # below 0.15 so that none reads as water or vegetation), the
    # multi-coloured fine texture of stacked containers seen at 10 m.
    palette = np.array([[0.08, 0.06, 0.20, 0.18, 0.15], [0.16, 0.12, 0.10, 0.125, 0.12],
                        [0.30, 0.30, 0.30, 0.32, 0.25], [0.12, 0.12, 0.12, 0.13, 0.12]], np.float32)
    pick = rng.integers(0, len(palette), shape)
    for i, b in enumerate(S2_WATER):
        out[b] = np.where(hb.yard, palette[pick, i], out[b]).astype(np.float32)
    scl = np.where(hb.land, SCL_NOT_VEGETATED, SCL_WATER).astype(np.float32)
    for ship in ships:
        m = ship.mask(shape)
        for b in S2_SHIP:
            out[b][m] = S2_SHIP[b] + rng.normal(0.0, 0.005, int(m.sum()))
        scl[m] = SCL_NOT_VEGETATED
    for c in clouds:
        m = _as_mask(c, shape)
        for b in S2_CLOUD:
            out[b][m] = S2_CLOUD[b]
        scl[m] = SCL_CLOUD_HIGH
    for nd in nodata:
        m = _as_mask(nd, shape)
        for b in out:
            out[b][m] = np.nan
        scl[m] = np.nan
    out["SCL"] = scl
    return {k: np.clip(v, 1e-4, None) if k != "SCL" else v for k, v in out.items()}


def s1_bands(grid: Grid, hb: Harbour, ships=(), nodata=(), seed: int = 0) -> dict[str, np.ndarray]:
    """Sentinel-1 GRD sigma0 (linear VV, VH) of the harbour with gamma speckle."""
    rng = np.random.default_rng(seed)
    shape = (grid.height, grid.width)
    out = {}
    for i, band in enumerate(("VV", "VH")):
        mean = np.where(hb.land, S1_LAND[i], S1_SEA[i]).astype(np.float32)
        for ship in ships:
            mean[ship.mask(shape)] = S1_SHIP[i]
        speckle = rng.gamma(S1_ENL, 1.0 / S1_ENL, shape).astype(np.float32)
        out[band] = mean * speckle
    for nd in nodata:
        m = _as_mask(nd, shape)
        for b in out:
            out[b][m] = np.nan
    return out


def _as_mask(spec, shape) -> np.ndarray:
    if isinstance(spec, np.ndarray):
        return spec.astype(bool)
    m = np.zeros(shape, bool)
    m[spec] = True
    return m


def write_scene(data_dir: Path, aoi_id: str, grid: Grid, sensor: str, date: dt.date, scene_id: str,
                bands: dict[str, np.ndarray], simulated: bool = True) -> Path:
    """Write a tile and its STAC item as the fetch stage would; return the tile path."""
    path = tile_path(data_dir, aoi_id, sensor, date, scene_id)
    write_tile(path, bands, grid, sensor)
    hour = 2 if sensor == S2 else 9
    write_item(path, sensor=sensor, grid=grid, datetime=dt.datetime.combine(date, dt.time(hour, 10)),
               platform="sentinel-2a" if sensor == S2 else "sentinel-1a", source="tile_factory",
               product_ids=[scene_id], processing={"synthetic": True}, simulated=simulated)
    return path


def harbour_series(data_dir: Path, aoi_id: str, grid: Grid, dates, *, berthed_on=(), sensors=(S2,),
                   clouds_on=(), seed: int = 0) -> Harbour:
    """A time series of harbour scenes: one anchored ship every date, one ship
    moored at the quay on ``berthed_on`` dates, a cloud over part of the land
    and basin on ``clouds_on`` dates. Returns the harbour layout."""
    hb = harbour(grid)
    berth = hb.berth_ship(int(grid.width * 0.25))
    anchored = hb.anchored_ship()
    for i, date in enumerate(dates):
        ships = [anchored] + ([berth] if date in berthed_on else [])
        if S2 in sensors:
            clouds = [(slice(0, grid.height // 4), slice(grid.width // 2, grid.width))] if date in clouds_on else []
            write_scene(data_dir, aoi_id, grid, S2, date, f"S2_{date:%Y%m%d}",
                        s2_bands(grid, hb, ships, clouds, seed=seed + i), simulated=True)
        if S1 in sensors:
            write_scene(data_dir, aoi_id, grid, S1, date, f"S1_{date:%Y%m%d}",
                        s1_bands(grid, hb, ships, seed=seed + 100 + i), simulated=True)
    return hb
