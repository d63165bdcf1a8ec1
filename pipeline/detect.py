"""The detect stage: tiles in, per-date detections and ``timeseries.csv`` out.

Reads only what the fetch stage wrote (``<data>/tiles/<aoi>/<sensor>/<date>/``
tiles and their STAC items, see :mod:`.contracts`) and writes, per AOI and
date, ``<out>/detections/<aoi>/<date>.geojson`` (RFC 7946: an ``aoi_summary``
feature, then one feature per vessel and per container stack) and, rebuilt
from all detection files on every run, ``<out>/timeseries.csv``.

Reference water mask
    Every AOI gets a reference water mask from the whole time series of its
    tiles: a pixel is water when it is water in at least half of its clear
    observations (:func:`detectors.water.reference_water_mask`). Sentinel-2
    decides wherever it has a clear observation, because its 10 m NDWI edge
    is sharp while the Sentinel-1 mask is smoothed over 100 m and pulls the
    coastline ~50 m seaward, which would push ships berthed at a quay onto
    "land"; Sentinel-1 fills the pixels Sentinel-2 never saw clear. A berth
    that is occupied on fewer than half the dates therefore stays water and a
    ship moored there is detected. Non-water holes enclosed by water and no
    larger than a big ship (``reference.max_enclosed_area_m2``) are sea too,
    so a ship anchored at one spot on most dates is still found. A ship moored
    at the same quay on most dates is part of the land and is missed (known
    limitation). The reference uses every date on disk, also outside
    ``--start``/``--end``, of the selected sensors; tiles that fail to load are
    left out (their dates fail with the error). With fewer than
    ``reference.min_dates`` (2) observation dates there is no history and the
    detectors run in single-scene mode (the optical detector closes
    vessel-sized bays of the scene's own water body).

    The mask is cached in ``<out>/.berthwatch/reference/<aoi>.tif`` (uint8,
    1 = water; open it in QGIS) with the per-tile water masks in
    ``<aoi>.npz``, keyed by the tiles' SHA-256, so adding a tile computes the
    masks of that tile only. The ``.tif`` is rewritten only when the mask
    changes, and it is an input of every date of the AOI: a new tile
    recomputes every date of its AOI if and only if it flips at least one
    reference pixel. With a few observations per pixel that is likely (edge
    pixels near 50 %); once there are many it becomes rare, but nothing
    approximates: results are always those a run from scratch would give.

Sentinel-2 reference
    With Sentinel-2 history the AOI also gets a per-band median composite and
    reference yards (:mod:`.s2_reference`): the container-stack detector sees
    each date mapped onto the median's radiometry and accepts smaller stacks
    inside the yards. Both files are inputs of every date of the AOI, and a
    new Sentinel-2 tile almost always moves the median: it recomputes every
    date of its AOI (a new Sentinel-1 tile only when it flips the water mask).

Several scenes of one sensor on a date (adjacent granules, two passes) are
mosaicked: scenes are ranked by clear fraction over the AOI and each pixel is
taken from the best-ranked scene that observes it clearly, so a second
granule only fills the first one's gaps. Each vessel names the scene at its
centroid.

Dates that need computing run on ``extra["workers"]`` processes (CLI
``--workers``; default one per CPU, at most 8); results are written by the
main process in date order.

Incremental: every date is a :class:`.manifest.Task` whose inputs are its
tiles, their STAC items and the AOI's reference files, and whose parameters
are the detector version, the hash of all detector parameters and a digest
of the detector source code. A rerun skips what is current, recomputes what
changed, deletes detections whose tiles are gone, and deletes the stale
detection of a date that now fails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import io
import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio import features as rio_features
from rasterio.io import MemoryFile
from scipy import ndimage

from .. import detectors
from ..detectors import berth as det_berth
from ..detectors import optical as det_optical
from ..detectors import radiometry as det_radiometry
from ..detectors import sar as det_sar
from ..detectors import stacks as det_stacks
from ..detectors import water as det_water
from .aoi import AOI, Grid
from .atomic import atomic_path, write_bytes_atomic
from .contracts import (
    LARGE_VESSEL_M, S1, S2, SENSOR_BANDS, TIMESERIES_COLUMNS, TileRef, detection_path, find_tiles, item_path,
    read_item, timeseries_path,
)
from .errors import UsageError, UserError
from .geojson_io import feature, read_detections, to_lonlat, write_csv, write_feature_collection
from .manifest import MANIFEST_DIR, DirLock, Manifest, Task, params_hash, run_tasks
from .options import RunOptions, progress
from .pools import process_pool
from .s2_reference import REFLECTANCE as S2_REFLECTANCE
from .s2_reference import (
    OpticalReference, build_optical_reference, clear_s2, normalised_stack_bands, scl_codes,
    unchanged_since_median,
)
from .s2_reference import reference_paths as s2_reference_paths

log = logging.getLogger(__name__)

#: Version of the detection method written into every summary. Bump it when
#: results change meaning; code edits are caught anyway by the source digest.
DETECTOR_VERSION = getattr(detectors, "__version__", "0.1.0")
STAGE = "detect"


# ---------------------------------------------------------------- parameters
def _defaults(fn, skip: tuple[str, ...]) -> dict:
    """Keyword defaults of ``fn`` except its data arguments."""
    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if name in skip or p.default is inspect.Parameter.empty:
            continue
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        out[name] = p.default
    return out


def detector_params(overrides: dict | None = None) -> dict:
    """All parameters of the detection chain, by step, with the detectors' defaults.

    Read from the detector functions' signatures, so a changed default changes
    :func:`params_hash` and the affected dates are recomputed. ``overrides``
    (``{step: {name: value}}``) must name known steps and parameters.
    """
    from ..detectors.cfar import cfar_two_parameter

    params = {
        "reference": {"min_fraction": 0.5, "min_observations": 1, "min_dates": 2,
                      "max_enclosed_area_m2": 40_000.0, "yard_min_dates": 2,
                      "invariant_max_ndvi": 0.3},
        "radiometry": _defaults(det_radiometry.normalise_to_reference, ("image", "reference", "mask")),
        "change": _defaults(det_radiometry.unchanged_pixels, ("image", "reference", "mask")),
        "optical": dict(det_optical.DEFAULTS),
        "water_sar": _defaults(det_sar.water_mask_sar, ("vv", "vh", "pixel_size")),
        "sar": {
            **_defaults(det_sar.detect_vessels_sar, ("vv", "vh", "transform", "pixel_size", "land_mask")),
            **_defaults(cfar_two_parameter, ("image", "pixel_size", "valid", "return_background")),
        },
        "stacks": {
            **_defaults(det_stacks.detect_container_stacks,
                        ("bands", "transform", "scl", "water", "vessels", "pixel_size", "yard_prior",
                         "reference_stacks", "unchanged", "teu_params")),
            "teu_params": _defaults(det_stacks.estimate_teu, ("area_m2",)),
        },
        "berth": _defaults(det_berth.flag_at_berth, ("vessels", "land_mask", "transform", "berth_zones")),
        "merge": _defaults(det_berth.merge_sensor_duplicates, ("primary", "secondary")),
    }
    for step, values in (overrides or {}).items():
        if step not in params:
            raise UsageError(f"detector parameters: unknown step {step!r}; known: {', '.join(params)}")
        unknown = set(values) - set(params[step])
        if unknown:
            raise UsageError(f"detector parameters: unknown {step} parameter(s) {', '.join(sorted(unknown))}")
        for name, value in values.items():
            default = params[step][name]
            if not _same_kind(default, value):
                raise UsageError(f"detector parameters: {step}.{name} must be like its default {default!r}, "
                                 f"got {value!r}")
            params[step][name] = {**default, **value} if isinstance(default, dict) else value
    return params


def _same_kind(default, value) -> bool:
    """Whether an override has the shape of the default (bool, number, sequence, mapping, text)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list)) and len(value) == len(default)
    if isinstance(default, dict):
        return isinstance(value, dict) and set(value) <= set(default) and all(
            _same_kind(default[k], v) for k, v in value.items())
    return isinstance(value, type(default))


def detector_code_digest() -> str:
    """Digest of the detectors' and this stage's source: edits invalidate results."""
    h = hashlib.sha256()
    files = sorted(Path(detectors.__file__).parent.glob("*.py")) + [Path(__file__)]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- tiles
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
    recorded = (item.get("assets", {}).get("data", {}) or {}).get("file:checksum")
    if recorded and recorded != "1220" + hashlib.sha256(raw).hexdigest():
        raise UserError(f"{path}: does not match the file:checksum of {item_path(path).name} "
                        "(changed or truncated after fetch)")
    want = SENSOR_BANDS[tile.sensor]
    try:
        with MemoryFile(raw) as mem, mem.open() as ds:
            if tuple(ds.descriptions) != want:
                raise UserError(f"{path}: bands {ds.descriptions}, expected {want}")
            if any(d != "float32" for d in ds.dtypes):
                raise UserError(f"{path}: dtype {ds.dtypes[0]}, expected float32")
            if ds.crs != grid.crs or (ds.width, ds.height) != (grid.width, grid.height) or \
                    not ds.transform.almost_equals(grid.transform):
                raise UserError(f"{path}: grid {ds.crs} {ds.width}x{ds.height} differs from the AOI grid "
                                f"{grid.crs} {grid.width}x{grid.height}")
            data = ds.read()
    except rasterio.errors.RasterioIOError as exc:
        raise UserError(f"{path}: not a readable GeoTIFF or truncated ({str(exc).splitlines()[0]})") from None
    if np.isinf(data).any():
        raise UserError(f"{path}: infinite values")
    if not any(np.isfinite(band).any() for band in data):  # usually decided by the first band
        raise UserError(f"{path}: no valid pixel (all no data)")
    return {name: data[i] for i, name in enumerate(want)}, item


def clear_mask(sensor: str, bands: dict[str, np.ndarray]) -> np.ndarray:
    """Pixels observed without cloud, shadow or no data."""
    if sensor == S2:
        return clear_s2(bands)
    ok = np.ones(bands["VV"].shape, bool)
    for b in ("VV", "VH"):
        ok &= np.isfinite(bands[b]) & (bands[b] > 0)
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
    water = det_sar.water_mask_sar(bands["VV"], bands["VH"], pixel_size=pixel_size, **params["water_sar"])
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
    """Combine the scenes of one sensor and date, best clear fraction first."""
    clears = [clear_mask(sensor, bands) for _, bands, _ in scenes]
    order = sorted(range(len(scenes)), key=lambda i: (-(clears[i] & aoi_mask).sum(), scenes[i][0]))
    ids = [scenes[i][0] for i in order]
    items = [scenes[i][2] for i in order]
    if len(order) == 1:
        i = order[0]
        return SensorScene(sensor, ids, scenes[i][1], clears[i], None, items)
    clear_stack = np.stack([clears[i] for i in order])
    # First scene in rank order that sees the pixel clearly; the best scene where none does.
    source = np.where(clear_stack.any(axis=0), clear_stack.argmax(axis=0), 0)
    bands = {}
    for b in SENSOR_BANDS[sensor]:
        stack = np.stack([scenes[i][1][b] for i in order])
        bands[b] = np.take_along_axis(stack, source[None], axis=0)[0]
    clear = np.take_along_axis(clear_stack, source[None], axis=0)[0]
    return SensorScene(sensor, ids, bands, clear, source.astype(np.uint8), items)


# ---------------------------------------------------------------- reference mask
@dataclass
class Reference:
    """The AOI's reference water mask, or single-scene mode when ``water`` is None."""

    water: np.ndarray | None
    observed: np.ndarray | None
    path: Path | None
    n_dates: int
    digest: str | None = None
    optical: OpticalReference | None = None  # Sentinel-2 median and reference yards

    @property
    def paths(self) -> list[Path]:
        """Files of the reference that every date of the AOI depends on."""
        return ([self.path] if self.path is not None else []) + (self.optical.paths if self.optical else [])


def _pack(mask: np.ndarray) -> np.ndarray:
    return np.packbits(mask, axis=1)


def _unpack(packed: np.ndarray, width: int) -> np.ndarray:
    return np.unpackbits(packed, axis=1, count=width).astype(bool)


def fill_enclosed(water: np.ndarray, max_area_m2: float, pixel_size: float) -> np.ndarray:
    """Water with enclosed non-water holes up to ``max_area_m2`` filled.

    A ship anchored at the same spot on most dates is not water in the
    majority vote; holes enclosed by water and no larger than a big ship
    (400 m x 65 m is 26 000 m2) are sea, as in the single-scene domain of
    :func:`detectors.water.sea_domain`.
    """
    holes = ndimage.binary_fill_holes(water) & ~water
    labels, n = ndimage.label(holes)
    if n == 0:
        return water
    sizes = np.bincount(labels.ravel()) * pixel_size * pixel_size
    small = sizes <= max_area_m2
    small[0] = False
    return water | small[labels]


def _mask_digest(mask: np.ndarray) -> str:
    h = hashlib.sha256(str(mask.shape).encode())
    h.update(np.packbits(mask).tobytes())
    return h.hexdigest()[:16]


class ReferenceStore:
    """Per-AOI cache of tile water masks and the reference mask built from them."""

    def __init__(self, out_dir: Path, manifest: Manifest):
        self.dir = Path(out_dir) / MANIFEST_DIR / "reference"
        self.manifest = manifest

    def tif_path(self, aoi_id: str) -> Path:
        return self.dir / f"{aoi_id}.tif"

    def cache_path(self, aoi_id: str) -> Path:
        return self.dir / f"{aoi_id}.npz"

    def _load_cache(self, aoi_id: str, phash: str) -> tuple[dict, dict, str | None, tuple | None]:
        path = self.cache_path(aoi_id)
        if not path.exists():
            return {}, {}, None, None
        try:
            with np.load(path) as z:
                index = json.loads(str(z["index"]))
                if index.get("params") != phash:
                    return {}, {}, None, None
                masks = {k: (z[f"water_{e['slot']}"], z[f"valid_{e['slot']}"]) for k, e in index["tiles"].items()}
                combined = (z["reference"], z["observed"]) if "reference" in z.files else None
            return index["tiles"], masks, index.get("digest"), combined
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            log.warning("%s: unreadable reference cache; rebuilding it", path)
            return {}, {}, None, None

    def _save_cache(self, aoi_id: str, phash: str, entries: dict, masks: dict, digest: str | None,
                    water: np.ndarray | None = None, observed: np.ndarray | None = None) -> None:
        arrays, index = {}, {}
        for slot, (key, entry) in enumerate(sorted(entries.items())):
            index[key] = {**entry, "slot": slot}
            arrays[f"water_{slot}"], arrays[f"valid_{slot}"] = masks[key]
        if water is not None:
            arrays["reference"], arrays["observed"] = _pack(water), _pack(observed)
        arrays["index"] = np.array(json.dumps({"params": phash, "digest": digest, "tiles": index}))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        write_bytes_atomic(self.cache_path(aoi_id), buf.getvalue())

    def build(self, aoi: AOI, grid: Grid, tiles: list[TileRef], params: dict, workers: int = 1) -> Reference:
        """Update the cache with the AOI's current tiles and return the reference.

        Tiles that fail to load are left out (their dates fail on their own,
        with the error); the reference is rebuilt without them.
        """
        ref_params = {k: params[k] for k in ("reference", "optical", "water_sar")}
        phash = params_hash(ref_params)
        old_entries, old_masks, old_digest, old_combined = self._load_cache(aoi.id, phash)
        entries, masks = {}, {}
        for t in tiles:
            key = self.manifest.rel(t.path)
            old = old_entries.get(key)
            try:
                sha = self.manifest.checksum(t.path, old)
                if old and old["sha256"] == sha:
                    st = t.path.stat()  # refresh size/mtime so a touched tile is hashed once
                    entries[key], masks[key] = {**old, "size": st.st_size, "mtime_ns": st.st_mtime_ns}, old_masks[key]
                    continue
                bands, _ = load_tile(t, grid)
            except (UserError, OSError) as exc:
                log.debug("reference mask of %s leaves out %s: %s", aoi.id, t.path, exc)
                continue
            water, valid = tile_water(t.sensor, bands, params, grid.resolution)
            st = t.path.stat()
            entries[key] = {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                            "sensor": t.sensor, "date": t.date.isoformat()}
            masks[key] = (_pack(water), _pack(valid))

        dates = {e["date"] for e in entries.values()}
        rp = params["reference"]
        tif = self.tif_path(aoi.id)
        if len(dates) < rp["min_dates"]:
            if tif.exists():
                tif.unlink()
            self._remove_optical(aoi.id)
            if entries != old_entries or old_digest is not None:
                self._save_cache(aoi.id, phash, entries, masks, None)
            return Reference(None, None, None, len(dates))

        if entries == old_entries and old_combined is not None and old_digest and tif.exists():
            water, observed = (_unpack(a, grid.width) for a in old_combined)
            digest = old_digest
        else:
            water, observed = self._combine(entries, masks, grid, rp)
            digest = _mask_digest(water)
            if digest != old_digest or not tif.exists():
                self._write_tif(tif, water, grid)
            self._save_cache(aoi.id, phash, entries, masks, digest, water, observed)
        return Reference(water, observed, tif, len(dates), digest,
                         self._optical(aoi, grid, tiles, entries, water, digest, params, workers))

    def _optical(self, aoi: AOI, grid: Grid, tiles: list[TileRef], entries: dict, water: np.ndarray,
                 digest: str, params: dict, workers: int) -> OpticalReference | None:
        """The Sentinel-2 median and reference yards, with Sentinel-2 history; else none (files removed)."""
        s2 = {t.path: (entries[k]["sha256"], entries[k]["date"]) for t in tiles
              if t.sensor == S2 and (k := self.manifest.rel(t.path)) in entries}
        if len({date for _, date in s2.values()}) < params["reference"]["min_dates"]:
            self._remove_optical(aoi.id)
            return None
        return build_optical_reference(self.dir, aoi.id, grid, s2, water, digest, params, workers)

    def _remove_optical(self, aoi_id: str) -> None:
        for p in s2_reference_paths(self.dir, aoi_id):
            p.unlink(missing_ok=True)

    @staticmethod
    def _combine(entries: dict, masks: dict, grid: Grid, rp: dict) -> tuple[np.ndarray, np.ndarray]:
        """Majority water per sensor; Sentinel-2 decides where it has observations.

        Computed in row blocks so that the (T, rows, W) stacks stay below
        ~64 MB however long the time series.
        """
        h, w = grid.height, grid.width
        water = np.zeros((h, w), bool)
        observed = np.zeros((h, w), bool)
        by_sensor = defaultdict(list)
        for key, e in entries.items():
            by_sensor[e["sensor"]].append(masks[key])
        n = max((len(v) for v in by_sensor.values()), default=1)
        rows = max(1, (64 << 20) // max(n * w, 1))
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            decided = np.zeros((r1 - r0, w), bool)
            for sensor in (S2, S1):  # priority order
                pairs = by_sensor.get(sensor)
                if not pairs:
                    continue
                ws = np.stack([_unpack(p[0][r0:r1], w) for p in pairs])
                vs = np.stack([_unpack(p[1][r0:r1], w) for p in pairs])
                ref = det_water.reference_water_mask(ws, vs, min_fraction=rp["min_fraction"],
                                                     min_observations=rp["min_observations"])
                seen = vs.sum(axis=0) >= max(int(rp["min_observations"]), 1)
                take = seen & ~decided
                water[r0:r1][take] = ref[take]
                decided |= seen
            observed[r0:r1] = decided
        return fill_enclosed(water, rp["max_enclosed_area_m2"], grid.resolution), observed

    @staticmethod
    def _write_tif(path: Path, water: np.ndarray, grid: Grid) -> None:
        profile = dict(driver="GTiff", dtype="uint8", count=1, width=grid.width, height=grid.height,
                       crs=grid.crs, transform=grid.transform, compress="deflate", nodata=None)
        with atomic_path(path) as tmp:
            with rasterio.open(tmp, "w", **profile) as ds:
                ds.write(water.astype(np.uint8), 1)
                ds.set_band_description(1, "reference_water")


# ---------------------------------------------------------------- one AOI-date
@dataclass
class AoiContext:
    aoi: AOI
    grid: Grid
    aoi_mask: np.ndarray
    berth_zones: list
    to_lonlat: object
    reference: Reference


def aoi_context(aoi: AOI, reference: Reference) -> AoiContext:
    grid = aoi.grid()
    geom_utm = aoi.to_crs(aoi.geometry, grid.crs)
    aoi_mask = rio_features.geometry_mask([geom_utm], (grid.height, grid.width), grid.transform, invert=True)
    zones = [aoi.to_crs(z.geometry, grid.crs) for z in aoi.zones_of("berth")]
    return AoiContext(aoi, grid, aoi_mask, zones, to_lonlat(grid.crs), reference)


def _fraction(mask: np.ndarray, within: np.ndarray) -> float:
    n = int(within.sum())
    return float((mask & within).sum() / n) if n else 0.0


def _prefixed(prefix: str, attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if k in ("sensors", "merged_from", "scene", "distance_to_land_m"):
            continue
        if isinstance(v, (list, tuple)):
            v = ",".join(str(x) for x in v)
        out[f"{prefix}{k}"] = v
    return out


SENSOR_PREFIX = {S2: "s2_", S1: "s1_"}


class StepClock:
    """Accumulates wall time per step into a dict (for the benchmark)."""

    def __init__(self, timings: dict | None):
        self.timings = timings
        self._step, self._t0 = None, 0.0

    def __call__(self, step: str) -> "StepClock":
        self._step = step
        return self

    def __enter__(self):
        self._t0 = time.perf_counter()

    def __exit__(self, *exc):
        if self.timings is not None:
            self.timings[self._step] = self.timings.get(self._step, 0.0) + time.perf_counter() - self._t0


def detect_aoi_date(ctx: AoiContext, date: dt.date, tiles: list[TileRef], params: dict,
                    timings: dict | None = None) -> list[dict]:
    """Detections of one AOI and date as GeoJSON features (summary first).

    ``timings``, when given, receives the seconds spent per step.
    """
    clock = StepClock(timings)
    grid, tr = ctx.grid, ctx.grid.transform
    px = grid.resolution
    loaded: dict[str, list] = defaultdict(list)
    with clock("read"):
        for t in tiles:
            bands, item = load_tile(t, grid)
            loaded[t.sensor].append((t.scene_id, bands, item))
        scenes = {s: mosaic(s, loaded[s], ctx.aoi_mask) for s in (S2, S1) if loaded.get(s)}
    ref = ctx.reference

    # Sea domain and land: the reference, or in single-scene mode this date's own water.
    if ref.water is not None:
        domain, land = ref.water, ~ref.water & ref.observed
    else:
        with clock("single_scene_water"):
            domain = np.zeros((grid.height, grid.width), bool)
            seen = np.zeros_like(domain)
            if S2 in scenes:
                b = scenes[S2].bands
                w2, v2 = optical_water(b, params["optical"])
                domain |= optical_sea_domain(w2, params["optical"], px) & v2
                seen |= v2
            if S1 in scenes:
                s = scenes[S1]
                w1 = det_sar.water_mask_sar(s.bands["VV"], s.bands["VH"], pixel_size=px, **params["water_sar"])
                domain |= w1 & s.clear & ~seen
                seen |= s.clear
            land = ~domain & seen

    vessels_by_sensor: dict[str, list] = {}
    stacks, stack_stats, normalisation = [], None, None
    if S2 in scenes:
        s = scenes[S2]
        b = s.bands
        scl = scl_codes(b["SCL"])
        reflectance = {k: b[k] for k in S2_REFLECTANCE}
        with clock("s2_vessels"):
            v2 = det_optical.detect_vessels_optical(reflectance, tr, scl=scl, reference_water=ref.water,
                                                    pixel_size=px, **params["optical"])
        with clock("s2_stacks"):
            optical = ref.optical
            stack_bands, normalisation = normalised_stack_bands(
                reflectance, s.clear & land, optical.median if optical else None, params)
            unchanged = None
            if normalisation["applied"]:
                unchanged = unchanged_since_median(stack_bands, s.clear & land, optical.median, params)
                normalisation["unchanged_fraction"] = round(float(unchanged[land].mean()), 4) if land.any() else 0.0
            stacks, stack_stats = det_stacks.detect_container_stacks(
                stack_bands, tr, scl=scl, water=domain, vessels=v2, pixel_size=px,
                yard_prior=optical.yards if optical else None,
                reference_stacks=optical.stacks if unchanged is not None else None, unchanged=unchanged,
                **params["stacks"])
        vessels_by_sensor[S2] = v2
    if S1 in scenes:
        s = scenes[S1]
        with clock("s1_vessels"):
            v1 = det_sar.detect_vessels_sar(s.bands["VV"], s.bands["VH"], tr, pixel_size=px, land_mask=~domain,
                                            **params["sar"])
        vessels_by_sensor[S1] = v1
    for sensor, vs in vessels_by_sensor.items():
        for v in vs:
            v.attributes["scene"] = scenes[sensor].scene_at(v.x, v.y, tr)
    with clock("merge_berth"):
        # Merged first so that the berth distance transform runs once per date;
        # a merged vessel keeps the Sentinel-2 outline, the sharper one.
        vessels = det_berth.merge_sensor_duplicates(vessels_by_sensor.get(S2, []), vessels_by_sensor.get(S1, []),
                                                    **params["merge"])
        vessels = det_berth.flag_at_berth(vessels, land, tr, berth_zones=ctx.berth_zones, **params["berth"])

    project = ctx.to_lonlat
    vessel_features = []
    for v in vessels:
        props = {"kind": "vessel", "length_m": v.length_m, "width_m": v.width_m, "heading_deg": v.heading_deg,
                 "area_m2": v.area_m2, "score": v.score, "at_berth": v.at_berth, "sensor": v.sensor,
                 "scene": v.attributes.get("scene"), "sensors": list(v.attributes.get("sensors", [v.sensor])),
                 "distance_to_land_m": v.attributes.get("distance_to_land_m")}
        other = v.attributes.get("merged_from")
        if other:
            props.update(matched_sensor=other["sensor"], matched_length_m=other["length_m"],
                         matched_offset_m=float(np.hypot(other["x"] - v.x, other["y"] - v.y)),
                         matched_scene=scenes[other["sensor"]].scene_at(other["x"], other["y"], tr)
                         if other["sensor"] in scenes else None)
        props.update(_prefixed(SENSOR_PREFIX.get(v.sensor, ""), v.attributes))
        vessel_features.append(feature(project(v.outline), props))
    stack_features = []
    for st in stacks:
        props = {"kind": "container_stack", "area_m2": st.area_m2, "teu_estimate": st.teu_estimate,
                 "teu_low": st.teu_low, "teu_high": st.teu_high, "on_vessel": st.on_vessel,
                 "scene": scenes[S2].scene_ids[0] if len(scenes[S2].scene_ids) == 1 else
                 ",".join(scenes[S2].scene_ids)}
        props.update(st.attributes)
        stack_features.append(feature(project(st.outline), props))

    items = [it for s in scenes.values() for it in s.items]
    summary = {
        "kind": "aoi_summary",
        "aoi": ctx.aoi.id,
        "aoi_name": ctx.aoi.name,
        "role": ctx.aoi.role,
        "date": date.isoformat(),
        "sensors": list(scenes),
        "scenes": [sid for s in scenes.values() for sid in s.scene_ids],
        "acquired": {it.get("id"): it.get("properties", {}).get("datetime") for it in items},
        "clear_fraction": {sensor: _fraction(s.clear, ctx.aoi_mask) for sensor, s in scenes.items()},
        "vessels": len(vessels),
        "vessels_at_berth": sum(v.at_berth for v in vessels),
        "large_vessels": sum(v.length_m >= LARGE_VESSEL_M for v in vessels),
        "vessels_by_sensor": {s: len(v) for s, v in vessels_by_sensor.items()},
        "vessels_seen_by_both": sum(len(v.attributes.get("sensors", [])) > 1 for v in vessels),
        "container_stack_area_m2": stack_stats["stack_area_m2"] if stack_stats else None,
        "container_stack_area_on_vessels_m2": sum(s.area_m2 for s in stacks if s.on_vessel) if stack_stats else None,
        "teu_estimate": stack_stats["teu_estimate"] if stack_stats else None,
        "teu_low": stack_stats["teu_low"] if stack_stats else None,
        "teu_high": stack_stats["teu_high"] if stack_stats else None,
        "stack_observed_fraction": stack_stats["observed_fraction"] if stack_stats else None,
        # Sentinel-2 as the stack detector saw it: ~ gain * median + offset per band, undone.
        "s2_normalisation": normalisation if stack_stats else None,
        "water_reference": "time-series" if ref.water is not None else "single-scene",
        "reference_dates": ref.n_dates,
        "simulated": any(bool(it.get("properties", {}).get("berthwatch:simulated", False)) for it in items),
        "detector_version": DETECTOR_VERSION,
        "params_hash": params_hash(params),
    }
    return [feature(ctx.aoi.geometry, summary)] + vessel_features + stack_features


# ---------------------------------------------------------------- timeseries
def timeseries_rows(out_dir: Path) -> list[dict]:
    """One row per detection file under ``<out>/detections``, sorted by AOI and date."""
    rows = []
    for path in sorted((Path(out_dir) / "detections").glob("*/*.geojson")):
        try:
            s, _ = read_detections(path)
        except UserError as exc:
            log.warning("timeseries leaves out %s", exc)
            continue
        cf = s.get("clear_fraction") or {}
        rows.append({
            "portid": s["aoi"], "portname": s.get("aoi_name") or s["aoi"], "date": s["date"], "aoi": s["aoi"],
            "role": s.get("role"), "sensors": ";".join(s["sensors"]), "scenes": ";".join(s["scenes"]),
            "clear_fraction_s2": cf.get(S2), "clear_fraction_s1": cf.get(S1),
            **{k: s.get(k) for k in ("vessels", "vessels_at_berth", "large_vessels", "container_stack_area_m2",
                                     "teu_estimate", "teu_low", "teu_high", "detector_version", "params_hash")},
            "simulated": "true" if s.get("simulated") else "false",
        })
    return rows


def write_timeseries(out_dir: Path) -> int:
    rows = timeseries_rows(out_dir)
    write_csv(timeseries_path(out_dir), rows, TIMESERIES_COLUMNS)
    return len(rows)


# ---------------------------------------------------------------- the stage
def _date_task(ctx: AoiContext, date: dt.date, tiles: list[TileRef], params: dict, fixed: dict,
               out_dir: Path, futures: dict) -> Task:
    out = detection_path(out_dir, ctx.aoi.id, date)
    inputs = [p for t in tiles for p in (t.path, t.item)]
    inputs += ctx.reference.paths
    key = f"{ctx.aoi.id}/{date.isoformat()}"

    def run(task: Task) -> None:
        future = futures.pop(key, None)
        feats = future.result() if future is not None else detect_aoi_date(ctx, date, tiles, params)
        write_feature_collection(out, feats)

    task = Task(key, [out], inputs, {**fixed, "reference": "time-series" if ctx.reference.path else "single-scene"},
                run)
    task.meta.update(aoi=ctx.aoi, reference=ctx.reference, date=date, tiles=tiles)
    return task


_worker_contexts: dict = {}


def _detect_in_worker(aoi: AOI, reference: Reference, date: dt.date, tiles: list[TileRef], params: dict) -> list:
    ctx_key = (aoi.id, reference.digest, reference.n_dates, reference.optical.digest if reference.optical else None)
    if ctx_key not in _worker_contexts:
        _worker_contexts.clear()
        _worker_contexts[ctx_key] = aoi_context(aoi, reference)
    return detect_aoi_date(_worker_contexts[ctx_key], date, tiles, params)


def _submit_stale(tasks: list[Task], manifest: Manifest, force: bool, workers: int, params: dict, futures: dict):
    """Start the dates that need computing on a process pool; None when not worth it.

    The pool is :func:`.pools.process_pool` (a fork server, never a fork of
    this process). The results come back as feature lists and are written
    (atomically) by the parent, in task order, so the manifest and the
    progress bar stay single-threaded.
    """
    stale = [t for t in tasks if force or not manifest.is_current(t)]
    workers = min(workers, len(stale))
    if workers < 2:
        return None
    pool = process_pool(workers, __name__)
    for t in stale:
        m = t.meta
        futures[t.key] = pool.submit(_detect_in_worker, m["aoi"], m["reference"], m["date"], m["tiles"], params)
    return pool


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def run_detect(opts: RunOptions) -> int:
    """Run the detect stage; return the exit code (1 when any AOI-date failed)."""
    data_dir, out_dir = Path(opts.data_dir), Path(opts.out_dir)
    if not (data_dir / "tiles").is_dir():
        raise UserError(f"{data_dir}: no tiles folder; run `berthwatch fetch` first (or pass --data-dir)")
    params = detector_params((opts.extra or {}).get("detector_params"))
    fixed = {"stage": STAGE, "detector_version": DETECTOR_VERSION, "params_hash": params_hash(params),
             "code": detector_code_digest()}
    out_dir.mkdir(parents=True, exist_ok=True)
    with DirLock(out_dir):
        manifest = Manifest(out_dir, STAGE)
        store = ReferenceStore(out_dir, manifest)
        workers = int((opts.extra or {}).get("workers") or default_workers())
        tasks: list[Task] = []
        futures: dict = {}
        for aoi in opts.aois:
            history = find_tiles(data_dir, [aoi.id], opts.sensors)
            if not history:
                continue
            ctx = aoi_context(aoi, store.build(aoi, aoi.grid(), history, params, workers))
            by_date: dict[dt.date, list[TileRef]] = defaultdict(list)
            for t in history:
                if (opts.start is None or t.date >= opts.start) and (opts.end is None or t.date <= opts.end):
                    by_date[t.date].append(t)
            tasks += [_date_task(ctx, d, ts, params, fixed, out_dir, futures) for d, ts in sorted(by_date.items())]
        removed = manifest.prune_orphans(lambda rel: rel.startswith("detections/"))
        manifest.save()
        pool = _submit_stale(tasks, manifest, opts.force, workers, params, futures)
        try:
            result = run_tasks(manifest, tasks, force=opts.force, progress=lambda ts: progress(ts, "detect"))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        for key in result.failed:
            aoi_id, day = key.split("/")
            stale = detection_path(out_dir, aoi_id, dt.date.fromisoformat(day))
            if stale.exists():
                stale.unlink()
            manifest.forget(stale)
        manifest.save()
        # Outputs pruned because the reference mask appeared or vanished were just recomputed.
        result.removed += [r for r in removed if not (out_dir / r).exists()]
        n_rows = write_timeseries(out_dir)
    log.info("detect: %d done, %d up to date, %d failed, %d removed; %s has %d rows",
             len(result.done), len(result.skipped), len(result.failed), len(result.removed),
             timeseries_path(out_dir), n_rows)
    if not tasks:
        raise UserError(f"{data_dir}/tiles: no tiles for AOI {', '.join(opts.aoi_ids) or '(none)'}"
                        + (f" between {opts.start} and {opts.end}" if opts.start or opts.end else ""))
    return 1 if result.failed else 0
