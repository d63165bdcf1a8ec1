"""Sentinel-1 vessels on rasters larger than memory: window by window, equal to the whole-image result.

A whole IW scene (about 25,000 x 17,000 pixels, VV + VH: 3.4 GB in float32)
does not fit the "read the tile, detect in memory" model of an AOI-date.
:func:`scene_vessels` runs :func:`detectors.sar.detect_vessels_sar` on it in
windows of ``chunk`` pixels, each a task of the engine
(:mod:`..core.engine`: local processes or a Dask cluster), and returns the
vessels the whole-image call would return, in the same order, with the same
numbers to the last bit (when the grid origin is a whole number of pixel
sizes, as UTM grids are; otherwise to floating-point rounding).

The CFAR background is not local: each block's threshold comes from its
800 m ring, but the censoring iterations, the widening of rings that hold
too few water pixels and the convergence test involve the whole image. So
the windows send their statistics to the coordinating process instead of
guessing them from a halo:

1. **Block sums and candidates** (one read of every window). Each window
   returns the per-block sums of its core (a block's sums depend on its own
   pixels only, :func:`detectors.cfar.block_sums`) and, from a provisional
   threshold computed on its own halo of ``outer_half + 1`` blocks, the
   pixels that may be CFAR candidates: those above 90 % of the provisional
   candidate level (the censoring lowers thresholds by a few per cent).
2. **Thresholds** (coordinator, on the block grid: 1/256 of the pixels at
   the default 16-pixel blocks). The exact thresholds of the whole image
   are computed from the assembled sums (:func:`detectors.cfar.cfar_thresholds`);
   the candidate list is the windows' pixels above the exact candidate
   level. Where a provisional threshold was not below the exact one (a ring
   that needed widening, or rounding), those blocks of the image are read
   again, as they are wherever the censoring iterations
   (:func:`detectors.cfar.cfar_censor`) lower a threshold below the level
   collected so far.
3. **Objects** (only windows with detections). Each window reads its core
   plus a halo of at least the longest accepted vessel (``max_length_m``
   plus the resolution, times sqrt 2) and the closing's reach, groups and
   measures the detections (:func:`detectors.sar.cluster_detections`,
   :func:`detectors.sar.vessels_from_clusters`) and keeps the objects whose
   first pixel (row-major) lies in its core: each object is owned by
   exactly one window. An owned object within 3 pixels of the halo's edge
   may be cut: the window is then read again with twice the halo.

Memory per task is bounded by the window, ``(chunk + 2 * halo)^2`` pixels
times about 30 bytes (two float32 bands, masks and temporaries: about
0.6 GB at the default 4096-pixel chunk), not by the scene; the coordinator
holds the block grids and the candidates (about 1 % of the water pixels).

Land: ``land`` (a raster on the same grid, non-zero = land) is read window
by window and grown by ``land_buffer_m`` with a matching halo. The
backscatter water mask (:func:`detectors.sar.water_mask_sar`) is not
computed here: its hole filling is not local. Pass a land mask rasterised
from a coastline for scenes with coast.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window
from scipy import ndimage

from ...detectors import cfar as det_cfar
from ...detectors import sar as det_sar
from ..core.errors import UserError

log = logging.getLogger(__name__)

#: Provisional candidate levels are lowered by this factor: it covers the rounding of the ring
#: sums and the lowering of thresholds by the censoring, which then finds its candidates among
#: those already collected instead of reading the image again.
PROVISIONAL_SLACK = 0.9
#: Objects closer than this to a window's inner edge may be cut by it (the closing reaches 2 px).
EDGE_PX = 3


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


def _read(spec: SceneSpec, region: Region, land_buffer_m: float) -> tuple[dict, np.ndarray]:
    """The bands of ``region`` and their valid pixels (land grown with a halo of its own)."""
    r = int(math.ceil(land_buffer_m / spec.pixel_size)) if spec.land and land_buffer_m > 0 else 0
    outer = region.grown(r, spec)
    win = Window(outer.c0, outer.r0, outer.c1 - outer.c0, outer.r1 - outer.r0)
    with rasterio.open(spec.path) as ds:
        bands = {"vv": ds.read(spec.vv_band, window=win, out_dtype="float32")}
        if spec.vh_band:
            bands["vh"] = ds.read(spec.vh_band, window=win, out_dtype="float32")
    land = None
    if spec.land:
        with rasterio.open(spec.land) as ds:
            land = ds.read(1, window=win) != 0
    valid = det_sar.sar_valid(bands, land, land_buffer_m, spec.pixel_size)
    if outer != region:
        inner = np.s_[region.r0 - outer.r0:region.r1 - outer.r0, region.c0 - outer.c0:region.c1 - outer.c0]
        bands = {k: np.ascontiguousarray(v[inner]) for k, v in bands.items()}
        valid = np.ascontiguousarray(valid[inner])
    return bands, valid


def _blocks(region: Region, block: int) -> tuple[slice, slice]:
    return (slice(region.r0 // block, -(-region.r1 // block)), slice(region.c0 // block, -(-region.c1 // block)))


# ------------------------------------------------------------------ tasks (run on the workers)
def window_statistics(spec: SceneSpec, core: Region, setup: det_cfar.CfarSetup, land_buffer_m: float) -> dict:
    """Pass 1 of a window: block sums of its core, provisional thresholds and candidates per band."""
    halo = (setup.outer_half + 1) * setup.block
    frame = core.grown(halo, spec)
    bands, valid = _read(spec, frame, land_buffer_m)
    inner_blocks = (slice((core.r0 - frame.r0) // setup.block, (core.r0 - frame.r0) // setup.block
                          + -(-(core.r1 - core.r0) // setup.block)),
                    slice((core.c0 - frame.c0) // setup.block, (core.c0 - frame.c0) // setup.block
                          + -(-(core.c1 - core.c0) // setup.block)))
    inner = np.s_[core.r0 - frame.r0:core.r1 - frame.r0, core.c0 - frame.c0:core.c1 - frame.c0]
    out = {}
    for name, band in bands.items():
        sums = det_cfar.block_sums(band, valid, setup.block)
        _, _, _, t_cen = det_cfar.cfar_thresholds(sums, setup, widen=False)
        t_low = det_cfar.CANDIDATE_MARGIN * t_cen[inner_blocks] * PROVISIONAL_SLACK
        rr, cc = det_cfar.exceeding(np.ascontiguousarray(band[inner]), t_low, setup.block,
                                    np.ascontiguousarray(valid[inner]))
        values = band[inner][rr, cc]
        out[name] = {"sums": tuple(a[inner_blocks] for a in sums), "t_low": t_low,
                     "index": (rr + core.r0).astype(np.int64) * spec.width + (cc + core.c0), "values": values}
    return out


def window_scan(spec: SceneSpec, core: Region, name: str, t_cand: np.ndarray, block: int,
                land_buffer_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact candidates of one band in a window core: pixels above ``t_cand`` (per block, NaN: not scanned).

    Only the blocks' bounding box is read. Returns linear indices and values, row-major.
    """
    todo = ~np.isnan(t_cand)
    if not todo.any():
        return np.empty(0, np.int64), np.empty(0, np.float32)
    br, bc = np.nonzero(todo.any(axis=1))[0], np.nonzero(todo.any(axis=0))[0]
    sub = Region(core.r0 + int(br[0]) * block, min(core.r0 + (int(br[-1]) + 1) * block, core.r1),
                 core.c0 + int(bc[0]) * block, min(core.c0 + (int(bc[-1]) + 1) * block, core.c1))
    bands, valid = _read(spec, sub, land_buffer_m)
    t = t_cand[br[0]:br[-1] + 1, bc[0]:bc[-1] + 1]
    rr, cc = det_cfar.exceeding(bands[name], t, block, valid)
    return (rr + sub.r0).astype(np.int64) * spec.width + (cc + sub.c0), bands[name][rr, cc]


def window_vessels(spec: SceneSpec, core: Region, frame: Region, detections: dict, backgrounds: dict,
                   block: int, params: dict):
    """Pass 3 of a window: the vessels whose first pixel lies in its core, as ``((row, col), Vessel)``.

    ``frame`` is the core with its halo (block-aligned); ``detections`` the
    CFAR detections in it (rows, cols on the scene, by band) and
    ``backgrounds`` the background grids of its blocks. None when an owned
    object reaches the halo's edge (it may be cut: call again with a wider
    halo).
    """
    bands, valid = _read(spec, frame, params["land_buffer_m"])
    h, w = frame.shape
    masks = {}
    for name, (rows, cols) in detections.items():
        m = np.zeros((h, w), dtype=bool)
        m[rows - frame.r0, cols - frame.c0] = True
        masks[name] = m
    detected = np.logical_or.reduce(list(masks.values()))
    labels, (lr0, lc0) = det_sar.cluster_detections(detected, valid)
    if labels is None:
        return []
    boxes = ndimage.find_objects(labels)
    firsts, keep = [], np.zeros(len(boxes), dtype=bool)
    lo_r = 0 if frame.r0 == 0 else EDGE_PX
    lo_c = 0 if frame.c0 == 0 else EDGE_PX
    hi_r = h if frame.r1 == spec.height else h - EDGE_PX
    hi_c = w if frame.c1 == spec.width else w - EDGE_PX
    for i, box in enumerate(boxes):
        top = labels[box[0].start, box[1]] == i + 1
        first = (box[0].start + lr0 + frame.r0, box[1].start + int(np.argmax(top)) + lc0 + frame.c0)
        firsts.append(first)
        keep[i] = core.r0 <= first[0] < core.r1 and core.c0 <= first[1] < core.c1
        if keep[i] and not (box[0].start + lr0 >= lo_r and box[0].stop + lr0 <= hi_r
                            and box[1].start + lc0 >= lo_c and box[1].stop + lc0 <= hi_c):
            return None
    bg = {name: det_cfar.CfarBackground(*grids, block=block) for name, grids in backgrounds.items()}
    found = det_sar.vessels_from_clusters(
        labels, (lr0, lc0), bands, masks, bg, spec.transform, spec.pixel_size, keep=keep,
        offset=(frame.r0, frame.c0), min_length_m=params["min_length_m"], max_length_m=params["max_length_m"],
        extent_db=params["extent_db"], resolution_m=params["resolution_m"])
    return [(firsts[label - 1], vessel) for label, vessel in found]


# ------------------------------------------------------------------ coordinator
def _run(engine, fn, arg_tuples: list[tuple]) -> list:
    if engine is not None and engine.parallel(len(arg_tuples)):
        return [f.result() for f in engine.submit_all(fn, arg_tuples, preload=__name__)]
    return [fn(*args) for args in arg_tuples]


def object_halo(params: dict, pixel_size: float, block: int) -> int:
    """Halo (px, a whole number of blocks) that holds any accepted vessel owned by a window."""
    reach = math.sqrt(2.0) * (params["max_length_m"] + params["resolution_m"]) / pixel_size + 2 + EDGE_PX
    return int(math.ceil(reach / block)) * block


def scene_vessels(spec: SceneSpec, params: dict, engine=None, chunk: int = 4096, stats: dict | None = None) -> list:
    """Vessels of a whole scene, window by window; equal to ``detect_vessels_sar`` on the whole image.

    Parameters
    ----------
    spec : SceneSpec
        From :func:`open_scene`.
    params : dict
        The ``sar`` detector parameters (:func:`..detect.params.detector_params`).
    engine : Engine, optional
        Runs the window tasks (None: in this process).
    chunk : int
        Window side in pixels (rounded to whole CFAR strips).
    stats : dict, optional
        Receives counts (windows, candidates, rescans, object windows).

    Returns
    -------
    list of Vessel
        In the order :func:`detectors.sar.detect_vessels_sar` gives them.
    """
    p = dict(params)
    vessel_keys = ("land_buffer_m", "min_length_m", "max_length_m", "extent_db", "resolution_m")
    vparams = {k: p.pop(k) for k in vessel_keys}
    names = ["vv", "vh"] if spec.vh_band else ["vv"]
    pfa = p.pop("pfa") / len(names)
    iterations = p.pop("censor_iterations")
    setup = det_cfar.cfar_setup(spec.pixel_size, pfa=pfa, **p)
    block = setup.block
    cores = plan_windows(spec, chunk, block)
    land_buffer = vparams["land_buffer_m"]
    first = _run(engine, window_statistics, [(spec, c, setup, land_buffer) for c in cores])

    nr, nc = -(-spec.height // block), -(-spec.width // block)
    info = {"windows": len(cores), "candidates": 0, "rescanned_blocks": 0, "rescanned_strips": 0, "regrown_windows": 0,
            "object_windows": 0}
    detections, backgrounds = {}, {}
    for name in names:
        sums = tuple(np.zeros((nr, nc)) for _ in range(3))
        t_low = np.full((nr, nc), np.nan)
        for core, res in zip(cores, first):
            rs, cs = _blocks(core, block)
            for grid, part in zip(sums, res[name]["sums"]):
                grid[rs, cs] = part
            t_low[rs, cs] = res[name]["t_low"]
        thresholds = det_cfar.cfar_thresholds(sums, setup)
        t_cand = det_cfar.CANDIDATE_MARGIN * thresholds[3]
        t_cand32 = t_cand.astype(np.float32)
        # Blocks with water whose provisional level was not below the exact one (NaN: the ring needed
        # widening) are scanned again exactly; elsewhere the windows' candidates are a superset.
        with np.errstate(invalid="ignore"):
            short = ~(t_low.astype(np.float32) <= t_cand32) & (sums[2] > 0)
        index = np.concatenate([res[name]["index"] for res in first])
        values = np.concatenate([res[name]["values"] for res in first])
        drop = short[index // spec.width // block, index % spec.width // block]
        index, values = index[~drop], values[~drop]  # incomplete there: scanned exactly below
        t_used = np.where(short, t_cand, t_low)
        t_used = np.where(sums[2] > 0, t_used, -np.inf)  # blocks without water hold no candidate

        def scan_blocks(t):
            """Exact candidates where ``t`` (per block) is not NaN, row-major."""
            todo = []
            for core in cores:
                rs, cs = _blocks(core, block)
                if not np.isnan(t[rs, cs]).all():
                    todo.append((spec, core, name, t[rs, cs], block, land_buffer))
            parts = _run(engine, window_scan, todo)
            idx = np.concatenate([x[0] for x in parts] or [np.empty(0, np.int64)])
            val = np.concatenate([x[1] for x in parts] or [np.empty(0, np.float32)])
            order = np.argsort(idx, kind="stable")
            return idx[order], val[order]

        if short.any():
            info["rescanned_blocks"] += int(short.sum())
            idx, val = scan_blocks(np.where(short, t_cand, np.nan))
            index = np.concatenate([index, idx])
            values = np.concatenate([values, val])
        order = np.argsort(index, kind="stable")
        # Every pixel above ``t_used`` (per block) is known; a rescan reads only the
        # blocks whose threshold fell below it, the rest is filtered from what is known.
        known = {"index": index[order], "values": values[order], "t_used": t_used}

        def scan(t, strips, known=known):
            strips = np.asarray(strips)
            info["rescanned_strips"] += int(strips.size)
            in_strips = np.zeros(t.shape, dtype=bool)
            for k in strips:
                in_strips[k * det_cfar.STRIP_BLOCKS:(k + 1) * det_cfar.STRIP_BLOCKS] = True
            lower = in_strips & (t < known["t_used"])
            if lower.any():
                info["rescanned_blocks"] += int(lower.sum())
                idx, val = scan_blocks(np.where(lower, t, np.nan))
                kr, kc = known["index"] // spec.width // block, known["index"] % spec.width // block
                stay = ~lower[kr, kc]
                merged = np.concatenate([known["index"][stay], idx])
                order = np.argsort(merged, kind="stable")
                known["index"] = merged[order]
                known["values"] = np.concatenate([known["values"][stay], val])[order]
                known["t_used"] = np.where(lower, t, known["t_used"])
            rows, cols = known["index"] // spec.width, known["index"] % spec.width
            br, bc = rows // block, cols // block
            sel = in_strips[br, bc] & (known["values"] > t.astype(np.float32)[br, bc])
            return rows[sel], cols[sel], known["values"][sel]

        all_strips = np.arange(-(-nr // det_cfar.STRIP_BLOCKS))
        index_r, index_c, values = scan(t_cand, all_strips)  # the exact candidates: nothing is read
        info["rescanned_strips"] -= int(all_strips.size)
        index = index_r * spec.width + index_c
        info["candidates"] += int(index.size)
        rr, cc, background = det_cfar.cfar_censor(
            sums, setup, thresholds, (index_r, index_c, values), scan, iterations)
        detections[name] = (rr, cc)
        backgrounds[name] = (background.mean, background.enl, background.threshold)

    # Pass 3: objects, in the windows whose core (+2 px) holds detections.
    pending = []
    for core in cores:
        grown = core.grown(2, spec)  # an object's first pixel may be up to 2 px left of its detections
        if any(((r >= grown.r0) & (r < grown.r1) & (c >= grown.c0) & (c < grown.c1)).any()
               for r, c in detections.values()):
            pending.append(core)
    info["object_windows"] = len(pending)
    halo = object_halo(vparams, spec.pixel_size, block)
    found = []
    while pending:
        todo = []
        for core in pending:
            frame = core.grown(halo, spec)
            near = {n: (r[m], c[m]) for n, (r, c) in detections.items()
                    for m in [(r >= frame.r0) & (r < frame.r1) & (c >= frame.c0) & (c < frame.c1)]}
            rs, cs = _blocks(frame, block)
            grids = {n: tuple(a[rs, cs] for a in g) for n, g in backgrounds.items()}
            todo.append((spec, core, frame, near, grids, block, vparams))
        results = _run(engine, window_vessels, todo)
        found += [pair for part in results if part is not None for pair in part]
        pending = [core for core, part in zip(pending, results) if part is None]
        halo *= 2  # an owned object reached the halo's edge: read more around it
        info["regrown_windows"] += len(pending)
    found.sort(key=lambda pair: pair[0])
    if stats is not None:
        stats.update(info)
    return [v for _, v in found]


def run_scene_vessels(scene: Path, out: Path, land: Path | None = None, *, chunk: int = 4096,
                      extra: dict | None = None) -> int:
    """``berthwatch scene-vessels``: detect the vessels of a whole scene; write them as GeoJSON.

    ``out`` is an RFC 7946 FeatureCollection: a ``scene_summary`` feature (the
    scene's footprint) then one ``vessel`` feature per detection, with the
    properties of the detect stage's Sentinel-1 vessels. Written atomically.
    Returns the number of vessels.
    """
    from shapely.geometry import box as shapely_box

    from ..core.engine import engine_from_options
    from ..core.geojson_io import feature, to_lonlat, write_feature_collection
    from ..core.manifest import params_hash
    from .params import DETECTOR_VERSION, detector_params

    if chunk < 256:
        raise UserError(f"--chunk: {chunk} px is too small (at least 256)")
    spec = open_scene(scene, land)
    params = detector_params((extra or {}).get("detector_params"))["sar"]
    with rasterio.open(spec.path) as ds:
        crs, bounds = ds.crs, ds.bounds
        simulated = ds.tags().get("berthwatch_simulated") == "true"
    stats: dict = {}
    with engine_from_options(extra) as engine:
        vessels = scene_vessels(spec, params, engine, chunk, stats)
    project = to_lonlat(crs)
    summary = {"kind": "scene_summary", "scene": Path(scene).name, "land_mask": Path(land).name if land else None,
               "vessels": len(vessels), "large_vessels": sum(v.length_m >= 80.0 for v in vessels),
               "width_px": spec.width, "height_px": spec.height, "chunk_px": chunk, **stats,
               "simulated": simulated, "detector_version": DETECTOR_VERSION, "params_hash": params_hash(params)}
    features = [feature(project(shapely_box(*bounds)), summary)]
    for v in vessels:
        props = {"kind": "vessel", "length_m": v.length_m, "width_m": v.width_m, "heading_deg": v.heading_deg,
                 "area_m2": v.area_m2, "score": v.score, "sensor": v.sensor}
        props.update({f"s1_{k}": ",".join(x) if isinstance(x, list) else x for k, x in v.attributes.items()})
        features.append(feature(project(v.outline), props))
    write_feature_collection(out, features)
    log.info("scene-vessels: %d vessels in %s (%d windows, %d with objects); %s", len(vessels), scene,
             stats["windows"], stats["object_windows"], out)
    return len(vessels)
