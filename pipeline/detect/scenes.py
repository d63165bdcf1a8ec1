"""One sensor's image of an AOI-date: tiles read against the contract, clear masks, water, mosaics."""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.io import MemoryFile

from ...detectors import sar as det_sar
from ...detectors import water as det_water
from ..core.aoi import Grid
from ..core.contracts import (S1, S2, TileRef, allowed_bands, item_path, physical_range_problem,
                              polarisation_bands, read_item)
from ..core.errors import UserError
from .s2_reference import clear_s2, scl_codes


def load_tile(tile: TileRef, grid: Grid) -> tuple[dict[str, np.ndarray], dict]:
    """Bands and STAC item of a tile, checked against the contract in one read.

    Raises
    ------
    UserError
        One line naming the file and the problem: missing or unreadable item,
        checksum mismatch, not a GeoTIFF, wrong bands, dtype or grid,
        truncated data, no valid pixel.
    """
    path = tile.path
    item = read_item(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    if not raw:
        raise UserError(f"{path}: empty file (0 bytes)")
    data_asset = item.get("assets", {}).get("data")
    if not isinstance(data_asset, dict):
        raise UserError(f"{item_path(path)}: no 'data' asset describing the tile")
    recorded = data_asset.get("file:checksum")
    if recorded and recorded != "1220" + hashlib.sha256(raw).hexdigest():
        raise UserError(f"{path}: does not match the file:checksum of {item_path(path).name} "
                        "(changed or truncated after fetch)")
    try:
        with MemoryFile(raw) as mem, mem.open() as ds:
            want = tuple(ds.descriptions)
            if want not in allowed_bands(tile.sensor):
                raise UserError(f"{path}: bands {ds.descriptions}, expected "
                                f"{' or '.join(map(str, allowed_bands(tile.sensor)))}")
            if any(d != "float32" for d in ds.dtypes):
                raise UserError(f"{path}: dtype {ds.dtypes[0]}, expected float32")
            if ds.crs != grid.crs or (ds.width, ds.height) != (grid.width, grid.height) or \
                    not ds.transform.almost_equals(grid.transform):
                raise UserError(f"{path}: grid {ds.crs} {ds.width}x{ds.height} differs from the AOI grid "
                                f"{grid.crs} {grid.width}x{grid.height}")
            data = ds.read()
    except rasterio.errors.RasterioError as exc:
        raise UserError(f"{path}: not a readable GeoTIFF or truncated ({str(exc).splitlines()[0]})") from None
    if np.isinf(data).any():
        raise UserError(f"{path}: infinite values")
    if not any(np.isfinite(band).any() for band in data):  # usually decided by the first band
        raise UserError(f"{path}: no valid pixel (all no data)")
    for i, name in enumerate(want):
        problem = physical_range_problem(name, data[i])
        if problem:
            raise UserError(f"{path}: {problem}")
    return {name: data[i] for i, name in enumerate(want)}, item


def clear_mask(sensor: str, bands: dict[str, np.ndarray]) -> np.ndarray:
    """Pixels observed without cloud, shadow or no data."""
    if sensor == S2:
        return clear_s2(bands)
    co, cross = polarisation_bands(bands)
    ok = np.isfinite(bands[co]) & (bands[co] > 0)
    if cross is not None:
        ok &= np.isfinite(bands[cross]) & (bands[cross] > 0)
    return ok


def _call(fn, *args, **kwargs):
    """Call ``fn`` with the keyword arguments it accepts (the optical parameter
    set names more than the water functions take)."""
    accepted = inspect.signature(fn).parameters
    return fn(*args, **{k: v for k, v in kwargs.items() if k in accepted})


def optical_water(bands: dict[str, np.ndarray], opt: dict):
    """Water and valid masks of a Sentinel-2 image with the optical detector's parameters."""
    return _call(det_water.water_mask_optical, bands["B03"], bands["B08"], bands["B11"], scl_codes(bands["SCL"]),
                 **opt)


def optical_sea_domain(water: np.ndarray, opt: dict, pixel_size: float) -> np.ndarray:
    """The single-scene sea domain detect_vessels_optical uses without a reference."""
    return _call(det_water.sea_domain, water, close_radius_m=opt["fill_radius_m"], pixel_size=pixel_size, **opt)


def tile_water(sensor: str, bands: dict[str, np.ndarray], params: dict, pixel_size: float):
    """Water and valid masks of one tile, as used for the reference mask."""
    if sensor == S2:
        return optical_water(bands, params["optical"])
    valid = clear_mask(S1, bands)
    co, cross = polarisation_bands(bands)
    water = det_sar.water_mask_sar(bands[co], bands.get(cross), pixel_size=pixel_size, **params["water_sar"])
    return water & valid, valid


@dataclass
class SensorScene:
    """The (possibly mosaicked) image of one sensor on one date."""

    sensor: str
    scene_ids: list[str]
    bands: dict[str, np.ndarray]
    clear: np.ndarray
    source: np.ndarray | None  # index into scene_ids per pixel; None for one scene
    items: list[dict] = field(default_factory=list)

    def scene_at(self, x: float, y: float, transform) -> str:
        if self.source is None:
            return self.scene_ids[0]
        col, row = ~transform @ (x, y)
        r = int(np.clip(row, 0, self.source.shape[0] - 1))
        c = int(np.clip(col, 0, self.source.shape[1] - 1))
        return self.scene_ids[int(self.source[r, c])]


def mosaic(sensor: str, scenes: list[tuple[str, dict, dict]], aoi_mask: np.ndarray) -> SensorScene:
    """Combine the scenes of one sensor and date, best clear fraction first.

    Sentinel-1 scenes of different polarisations are not mixed: only those with
    the best scene's co-polarisation (VV or HH) are used, and the cross-polarised
    band only when every one of them has it (else the mosaic is single-pol).
    """
    clears = [clear_mask(sensor, bands) for _, bands, _ in scenes]
    order = sorted(range(len(scenes)), key=lambda i: (-(clears[i] & aoi_mask).sum(), scenes[i][0]))
    names = tuple(scenes[order[0]][1])
    if sensor == S1:
        co = polarisation_bands(scenes[order[0]][1])[0]
        order = [i for i in order if polarisation_bands(scenes[i][1])[0] == co]
        crosses = {polarisation_bands(scenes[i][1])[1] for i in order}
        names = (co,) + ((crosses.pop(),) if len(crosses) == 1 and None not in crosses else ())
        scenes = [(sid, {b: bands[b] for b in names}, item) for sid, bands, item in scenes]
        clears = [clear_mask(sensor, bands) for _, bands, _ in scenes]
    ids = [scenes[i][0] for i in order]
    items = [scenes[i][2] for i in order]
    if len(order) == 1:
        i = order[0]
        return SensorScene(sensor, ids, scenes[i][1], clears[i], None, items)
    clear_stack = np.stack([clears[i] for i in order])
    # First scene in rank order that sees the pixel clearly; the best scene where none does.
    source = np.where(clear_stack.any(axis=0), clear_stack.argmax(axis=0), 0)
    bands = {}
    for b in names:
        stack = np.stack([scenes[i][1][b] for i in order])
        bands[b] = np.take_along_axis(stack, source[None], axis=0)[0]
    clear = np.take_along_axis(clear_stack, source[None], axis=0)[0]
    return SensorScene(sensor, ids, bands, clear, source.astype(np.uint8), items)
