"""Sentinel-2 reference of an AOI's time series, for the container-stack detector.

Three products, built from every Sentinel-2 tile of the AOI on disk (like the
reference water mask, also outside ``--start``/``--end``):

Median composite
    Per band, the median of the pixel's clear observations (SCL cloud,
    shadow and no data left out). Every date is mapped onto its radiometry
    before the stack detector runs (:func:`normalised_stack_bands`,
    :func:`detectors.radiometry.normalise_to_reference`): residual haze and
    illumination otherwise move the detected stack area by about one yard
    event from date to date, and a loading or unloading is a change of that
    area.
Reference yards
    Pixels where the stack detector, on those normalised dates, found stacks
    on at least ``reference.yard_min_dates`` dates
    (:func:`detectors.stacks.reference_yard_mask`). Inside them the detector
    accepts smaller stacks (``stacks.min_area_in_yard_m2``).

Median stacks
    The stack detector's result on the median composite itself (with the
    reference yards). Where a date's pixel matches the median within noise
    (:func:`unchanged_since_median`) it keeps this class, so the rim of a
    stack that did not move is decided once for the series
    (``reference_stacks`` in :func:`detectors.stacks.detect_container_stacks`).

They are written beside the reference water mask, in
``<out>/.berthwatch/reference/``: ``<aoi>-s2-median.tif`` (float32
reflectance B02, B03, B04, B08, B11) and ``<aoi>-yards.tif`` (uint8 bands
``reference_yard`` and ``median_stacks``, 1 = yes), for review in QGIS, and
are inputs of every date of the AOI. They are
recomputed when the AOI's Sentinel-2 tiles (by SHA-256), the reference water
mask or the parameters change; a run from scratch gives the same result.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from ...detectors import radiometry as det_radiometry
from ...detectors import stacks as det_stacks
from ...detectors import water as det_water
from ..core.aoi import Grid
from ..core.atomic import atomic_path, write_text_atomic
from ..core.contracts import S2, SENSOR_BANDS
from ..core.manifest import params_hash

log = logging.getLogger(__name__)

REFLECTANCE = SENSOR_BANDS[S2][:5]
#: Bands of ``<aoi>-yards.tif``.
YARDS_BANDS = ("reference_yard", "median_stacks")
#: Peak size of the (dates, bands, rows, width) block the median is computed on.
BLOCK_BYTES = 128 << 20


@dataclass
class OpticalReference:
    median: np.ndarray      # (5, H, W) float32, NaN where never observed clear
    yards: np.ndarray       # (H, W) bool
    stacks: np.ndarray      # (H, W) bool: the stack detector's result on the median
    paths: list[Path]
    digest: str             # of the tiles, water mask and parameters it was built from


def reference_paths(ref_dir: Path, aoi_id: str) -> tuple[Path, Path, Path]:
    """The median composite, the reference yards and the key they were built with."""
    return ref_dir / f"{aoi_id}-s2-median.tif", ref_dir / f"{aoi_id}-yards.tif", ref_dir / f"{aoi_id}-s2.json"


def scl_codes(scl: np.ndarray) -> np.ndarray:
    """SCL as integer codes; no data (NaN) becomes class 0 (no data)."""
    return np.nan_to_num(scl, nan=0.0).astype(np.uint8)


def clear_s2(bands: dict) -> np.ndarray:
    """Sentinel-2 pixels observed without cloud, shadow or no data (bands by name, any leading shape)."""
    ok = np.all([np.isfinite(bands[b]) & (bands[b] > 0) for b in REFLECTANCE], axis=0)
    return ok & ~det_water.isin_codes(scl_codes(bands["SCL"]), det_water.SCL_INVALID)


def median_composite(paths: list[Path], grid: Grid) -> np.ndarray:
    """Per-band median of the clear observations, read in row windows so memory stays bounded."""
    h, w = grid.height, grid.width
    out = np.full((len(REFLECTANCE), h, w), np.nan, dtype=np.float32)
    rows = max(1, BLOCK_BYTES // max(len(paths) * 6 * w * 4, 1))
    handles = [rasterio.open(p) for p in paths]
    try:
        for r0 in range(0, h, rows):
            window = Window(0, r0, w, min(rows, h - r0))
            cube = np.stack([ds.read(window=window) for ds in handles])  # (T, 6, rows, W)
            clear = clear_s2(dict(zip(SENSOR_BANDS[S2], np.moveaxis(cube, 1, 0))))  # (T, rows, W)
            # Median of the clear values by sorting them first (NaN sorts last):
            # np.nanmedian is ~10x slower on a short axis.
            ordered = np.sort(np.where(clear[:, None], cube[:, :5], np.nan), axis=0)
            n = clear.sum(axis=0)[None, None]                            # (1, 1, rows, W)
            lo = np.take_along_axis(ordered, np.maximum(n - 1, 0) // 2, axis=0)[0]
            hi = np.take_along_axis(ordered, n // 2, axis=0)[0]
            out[:, r0:r0 + window.height] = np.where(n[0] > 0, (lo + hi) / 2, np.nan)
    finally:
        for ds in handles:
            ds.close()
    return out


def _invariant_candidates(median: np.ndarray, clear_land: np.ndarray, params: dict) -> np.ndarray:
    """Clear built-up and bare ground: vegetation changes with the season (and
    would outnumber the port in a rural AOI), so it is left out."""
    red, nir = median[2], median[3]
    with np.errstate(invalid="ignore", divide="ignore"):
        vegetated = (nir - red) / (nir + red) > params["reference"]["invariant_max_ndvi"]
    return clear_land & ~vegetated


def normalised_stack_bands(reflectance: dict, clear_land: np.ndarray, median: np.ndarray | None,
                           params: dict) -> tuple[dict, dict]:
    """The bands the stack detector sees: the date mapped onto the median's radiometry.

    Returns the bands and a record of the fit (``applied``, ``gains``, ``offsets``).
    Without a median the bands are returned unchanged.
    """
    if median is None:
        return reflectance, {"applied": False}
    image = np.stack([reflectance[b] for b in REFLECTANCE])
    normalised, gains, offsets, applied = det_radiometry.normalise_to_reference(
        image, median, _invariant_candidates(median, clear_land, params), **params["radiometry"])
    info = {"applied": applied, "gains": [round(float(g), 4) for g in gains],
            "offsets": [round(float(o), 5) for o in offsets]}
    return dict(zip(REFLECTANCE, normalised)), info


def unchanged_since_median(stack_bands: dict, clear_land: np.ndarray, median: np.ndarray,
                           params: dict) -> np.ndarray:
    """Pixels of a normalised date (:func:`normalised_stack_bands`) that match the median within noise."""
    image = np.stack([stack_bands[b] for b in REFLECTANCE])
    unchanged, _ = det_radiometry.unchanged_pixels(image, median, _invariant_candidates(median, clear_land, params),
                                                   **params["change"])
    return unchanged


def _write(path: Path, data: np.ndarray, grid: Grid, names: tuple[str, ...]) -> None:
    profile = dict(driver="GTiff", dtype=str(data.dtype), count=data.shape[0], width=grid.width,
                   height=grid.height, crs=grid.crs, transform=grid.transform, compress="deflate",
                   tiled=True, blockxsize=256, blockysize=256,
                   nodata=np.nan if data.dtype.kind == "f" else None)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as ds:
            ds.write(data)
            for i, n in enumerate(names, 1):
                ds.set_band_description(i, n)


_TILE_CONTEXT: dict = {}


def _init_tile_context(context: dict) -> None:
    _TILE_CONTEXT.clear()
    _TILE_CONTEXT.update(context)


def _tile_stack_mask(path: Path) -> np.ndarray:
    """Stack mask of one tile mapped onto the median (context from :func:`_init_tile_context`), bit-packed."""
    c = _TILE_CONTEXT
    with rasterio.open(path) as ds:
        block = ds.read()
    bands = dict(zip(SENSOR_BANDS[S2], block))
    reflectance = {b: bands[b] for b in REFLECTANCE}
    stack_bands, _ = normalised_stack_bands(reflectance, clear_s2(bands) & ~c["water"], c["median"], c["params"])
    _, stats = det_stacks.detect_container_stacks(
        stack_bands, c["transform"], scl=scl_codes(bands["SCL"]),
        water=c["water"], pixel_size=c["pixel_size"], **c["params"]["stacks"])
    return np.packbits(stats["stack_mask"], axis=1)


def load_optical_reference(paths: list[Path], digest: str) -> OpticalReference:
    """The median composite and yards as written by :func:`build_optical_reference`."""
    median_path, yards_path = paths
    with rasterio.open(median_path) as m, rasterio.open(yards_path) as y:
        yards, stacks = y.read().astype(bool)
        return OpticalReference(m.read(), yards, stacks, list(paths), digest)


def build_optical_reference(ref_dir: Path, aoi_id: str, grid: Grid, tiles: dict[Path, tuple[str, str]],
                            water: np.ndarray, water_digest: str, params: dict,
                            engine=None) -> OpticalReference:
    """Median composite and reference yards of an AOI's Sentinel-2 tiles.

    ``tiles`` maps each tile path to its SHA-256 and ISO date (tiles that
    failed to load are not in it); ``water`` is the AOI's reference water
    mask. Where two granules of one date overlap, that date counts twice in
    the median (the overlap is a strip at most) but once for the yards. The
    tiles' stack masks are computed on ``engine`` (a
    :class:`..core.engine.Engine`; None: here); the result does not depend on it.
    """
    median_path, yards_path, key_path = reference_paths(ref_dir, aoi_id)
    used = {k: params[k] for k in ("radiometry", "stacks")}
    used.update({k: params["reference"][k] for k in ("yard_min_dates", "invariant_max_ndvi")})
    key = {"tiles": sorted(sha for sha, _ in tiles.values()), "water": water_digest, "params": params_hash(used),
           "products": list(YARDS_BANDS)}
    digest = params_hash(key)
    paths = [median_path, yards_path]
    try:
        if json.loads(key_path.read_text()) == key and all(p.exists() for p in paths):
            return load_optical_reference(paths, digest)
    except (OSError, ValueError, rasterio.errors.RasterioIOError):
        pass

    ordered = sorted(tiles)
    median = median_composite(ordered, grid)
    context = {"median": median, "water": water, "params": params, "transform": grid.transform,
               "pixel_size": grid.resolution}
    if engine is not None and engine.parallel(len(ordered)):
        packed = list(engine.map(_tile_stack_mask, ordered, preload=__name__, initializer=_init_tile_context,
                                 initargs=(context,)))
    else:
        _init_tile_context(context)
        packed = [_tile_stack_mask(p) for p in ordered]
        _TILE_CONTEXT.clear()
    by_date: dict[str, np.ndarray] = {}
    for path, bits in zip(ordered, packed):
        mask = np.unpackbits(bits, axis=1, count=grid.width).astype(bool)
        date = tiles[path][1]
        by_date[date] = by_date[date] | mask if date in by_date else mask
    yards = det_stacks.reference_yard_mask(by_date.values(), params["reference"]["yard_min_dates"])
    _, median_stats = det_stacks.detect_container_stacks(
        dict(zip(REFLECTANCE, median)), grid.transform, water=water, pixel_size=grid.resolution,
        yard_prior=yards, **params["stacks"])
    stacks = median_stats["stack_mask"]
    _write(median_path, median, grid, REFLECTANCE)
    _write(yards_path, np.stack([yards, stacks]).astype(np.uint8), grid, YARDS_BANDS)
    write_text_atomic(key_path, json.dumps(key))
    log.info("%s: Sentinel-2 median of %d tiles; reference yards %.1f ha", aoi_id, len(ordered),
             yards.sum() * grid.resolution ** 2 / 1e4)
    return OpticalReference(median, yards, stacks, paths, digest)
