"""Reading a scene larger than memory by regions: its grid, windows, and bands with valid pixels.

The I/O of :mod:`.sar_windows` (and of any windowed detector): a scene
GeoTIFF with bands described ``VV`` and ``VH`` and an optional land mask
on its grid (:func:`open_scene`), regions and windows of it
(:class:`Region`, :func:`plan_windows`), and :func:`read_region`, which
reads both bands of a region at once into a reused buffer and returns
them with their valid pixels (:func:`detectors.sar.sar_valid`), or None
for a region that is all land.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from ...detectors import cfar as det_cfar
from ...detectors import sar as det_sar
from ..core.errors import UserError


@dataclass(frozen=True)
class SceneSpec:
    """Where a task reads: the scene's VV/VH bands and the land mask."""

    path: str
    vv_band: int
    vh_band: int | None
    height: int
    width: int
    transform: Affine
    pixel_size: float
    land: str | None = None


def open_scene(path: Path, land: Path | None = None) -> SceneSpec:
    """Check a scene GeoTIFF (bands described ``VV`` and optionally ``VH``) and a land mask on its grid."""
    path = Path(path)
    try:
        with rasterio.open(path) as ds:
            names = [(d or "").upper() for d in ds.descriptions]
            height, width, transform, crs = ds.height, ds.width, ds.transform, ds.crs
    except rasterio.errors.RasterioIOError as exc:
        raise UserError(f"{path}: not a readable GeoTIFF ({exc})") from None
    if "VV" not in names:
        raise UserError(f"{path}: no band described VV (bands: {', '.join(names) or 'unnamed'})")
    if abs(abs(transform.a) - abs(transform.e)) > 1e-9 * abs(transform.a) or transform.b or transform.d:
        raise UserError(f"{path}: pixels are not square and north-up ({transform.a}, {transform.e})")
    if land is not None:
        try:
            with rasterio.open(land) as ds:
                same = (ds.height, ds.width) == (height, width) and ds.transform == transform and ds.crs == crs
        except rasterio.errors.RasterioIOError as exc:
            raise UserError(f"{land}: not a readable GeoTIFF ({exc})") from None
        if not same:
            raise UserError(f"{land}: the land mask is not on the grid of {path}")
    return SceneSpec(str(path), names.index("VV") + 1, names.index("VH") + 1 if "VH" in names else None,
                     height, width, transform, abs(transform.a), str(land) if land is not None else None)


@dataclass(frozen=True)
class Region:
    """Rows ``r0:r1`` and columns ``c0:c1`` of the scene."""

    r0: int
    r1: int
    c0: int
    c1: int

    def grown(self, by: int, spec: SceneSpec) -> "Region":
        return Region(max(self.r0 - by, 0), min(self.r1 + by, spec.height),
                      max(self.c0 - by, 0), min(self.c1 + by, spec.width))

    @property
    def shape(self) -> tuple[int, int]:
        return self.r1 - self.r0, self.c1 - self.c0


def plan_windows(spec: SceneSpec, chunk: int, block: int) -> list[Region]:
    """Cores of ``chunk`` pixels (rounded down to whole CFAR strips), row-major."""
    step_r = max(block * det_cfar.STRIP_BLOCKS, chunk // (block * det_cfar.STRIP_BLOCKS) * block * det_cfar.STRIP_BLOCKS)
    step_c = max(block, chunk // block * block)
    return [Region(r, min(r + step_r, spec.height), c, min(c + step_c, spec.width))
            for r in range(0, spec.height, step_r) for c in range(0, spec.width, step_c)]


_BUFFERS = threading.local()


def reused_array(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array of ``shape`` that this thread's next call reuses.

    A window's read is ~140 MB: a fresh array each time costs the kernel
    35,000 page faults (a third of the read's time). Arrays of a read never
    leave the task that made it (results are copies), and a task's reads
    follow one another.
    """
    n, key = int(np.prod(shape)), np.dtype(dtype).str
    buf = getattr(_BUFFERS, key, None)
    if buf is None or buf.size < n:
        buf = np.empty(n, dtype)
        setattr(_BUFFERS, key, buf)
    return buf[:n].reshape(shape)


class SceneSources:
    """The scene and its land mask, opened once for all the reads of a task."""

    def __init__(self, spec: SceneSpec):
        self.spec = spec

    def __enter__(self) -> "SceneSources":
        self._stack = contextlib.ExitStack()
        # GDAL's direct I/O copies the tiles of an uncompressed scene straight into the array (2-3x
        # faster than through its block cache); compressed scenes take the usual path.
        self._stack.enter_context(rasterio.Env(GTIFF_DIRECT_IO="YES"))
        self.scene = self._stack.enter_context(rasterio.open(self.spec.path))
        self.land = self._stack.enter_context(rasterio.open(self.spec.land)) if self.spec.land else None
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()


def read_region(src: SceneSources, region: Region, land_buffer_m: float):
    """The bands of ``region`` and their valid pixels (land grown with a halo of its own).

    Both bands come from one read (a pixel-interleaved scene stores them
    together); the arrays returned are views into the read with its halo.
    None when ``region`` is all land: nothing there is valid, and the bands
    are not read.
    """
    spec = src.spec
    r = int(math.ceil(land_buffer_m / spec.pixel_size)) if spec.land and land_buffer_m > 0 else 0
    outer = region.grown(r, spec)
    win = Window(outer.c0, outer.r0, outer.c1 - outer.c0, outer.r1 - outer.r0)
    inner = np.s_[region.r0 - outer.r0:region.r1 - outer.r0, region.c0 - outer.c0:region.c1 - outer.c0]
    shape = outer.shape
    land = None
    if src.land is not None:
        land = np.not_equal(src.land.read(1, window=win, out=reused_array(shape, np.uint8)), 0, out=reused_array(shape, bool))
        if land[inner].all():
            return None
        if not land.any():
            land = None  # open sea: no buffer to grow
    indexes = [spec.vv_band] + ([spec.vh_band] if spec.vh_band else [])
    data = src.scene.read(indexes, window=win, out=reused_array((len(indexes), *shape), np.float32))
    bands = dict(zip(["vv", "vh"], data))
    valid = det_sar.sar_valid(bands, land, land_buffer_m, spec.pixel_size)
    if outer != region:
        bands = {k: v[inner] for k, v in bands.items()}
        valid = valid[inner]
    return bands, valid


def block_slices(region: Region, block: int) -> tuple[slice, slice]:
    return (slice(region.r0 // block, -(-region.r1 // block)), slice(region.c0 // block, -(-region.c1 // block)))
