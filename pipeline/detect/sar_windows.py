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

1. **Block sums and candidates** (one read of every window, both bands at
   once: :mod:`.scene_io`; windows that are all land are not read). Each
   window returns the per-block sums of its core (a block's sums depend on
   its own pixels only, :func:`detectors.cfar.block_sums`) and, from a
   provisional threshold computed on its own halo of ``outer_half + 1``
   blocks, the pixels that may be CFAR candidates: those above
   ``PROVISIONAL_SLACK`` (95 %) of the provisional candidate level.
2. **Thresholds** (coordinator, on the block grid: 1/256 of the pixels at
   the default 16-pixel blocks; the two bands in two threads). The exact
   thresholds of the whole image are computed from the assembled sums
   (:func:`detectors.cfar.cfar_thresholds`); the candidate list is the
   windows' pixels above the exact candidate level. Where a provisional
   threshold was not below the exact one (a ring that needed widening, or
   rounding), those blocks of the image are read again, as they are
   wherever the censoring iterations (:func:`detectors.cfar.cfar_censor`)
   lower a threshold below the level collected so far; only small boxes
   around the clusters of such blocks are read, down to ``PROVISIONAL_SLACK``
   of the level asked (the next iterations lower it by a few % at most).
3. **Objects** (only around detections: a few thousand pixels of a scene).
   The coordinator groups the detection pixels on a grid of
   ``GROUP_CELL_PX`` cells (8-adjacent cells with detections form a group;
   an object's detections are at most 3 px apart, so no object spans two
   groups) and a task per window reads, for each group, its bounding box
   grown by ``OBJECT_MARGIN`` and block-aligned, clusters and measures the
   detections there (:func:`detectors.sar.cluster_detections`,
   :func:`detectors.sar.vessels_from_clusters`) and keeps the group's own
   objects. A group wider than a window is split by the windows: each part
   keeps the objects whose first pixel (row-major) lies in it, read with a
   halo of the longest accepted vessel; an object within 3 px of the box's
   edge may be cut, and its box is then read again, wider.

Memory per task is bounded by the window, ``(chunk + 2 * halo)^2`` pixels
times about 20 bytes (two float32 bands in a buffer the next read reuses,
masks and temporaries: about 0.5 GB at the default 4096-pixel chunk), not
by the scene; the coordinator holds the block grids and the candidates
(about 1.5 % of the water pixels: 5 M in an IW scene, ~100 MB per band).

Land: ``land`` (a raster on the same grid, non-zero = land) is read window
by window and grown by ``land_buffer_m`` with a matching halo. The
backscatter water mask (:func:`detectors.sar.water_mask_sar`) is not
computed here: its hole filling is not local. Pass a land mask rasterised
from a coastline for scenes with coast.
"""

from __future__ import annotations

import contextlib
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

from ...detectors import cfar as det_cfar
from ...detectors import sar as det_sar
from ..core.errors import UserError
from .scene_io import Region, SceneSources, SceneSpec, block_slices, open_scene, plan_windows, read_region

__all__ = ["SceneSpec", "open_scene", "plan_windows", "object_halo", "scene_vessels", "run_scene_vessels"]

log = logging.getLogger(__name__)

#: Provisional candidate levels are lowered by this factor: it covers the rounding of the ring
#: sums and the lowering of thresholds by the censoring, which then finds its candidates among
#: those already collected instead of reading the image again.
PROVISIONAL_SLACK = 0.95
#: Objects closer than this to a box's edge may be cut by it (the closing reaches 2 px).
EDGE_PX = 3
#: Blocks to rescan within this many blocks of each other are read as one box.
SCAN_MERGE_BLOCKS = 2
#: Detections are grouped on a grid of cells of this many pixels: detections in 8-adjacent cells
#: (closer than a cell) share a group, so an object (its detections are at most 3 px apart) never
#: spans two groups.
GROUP_CELL_PX = 16
#: A group's box is its detections' bounding box grown by this (px): the closing reaches 2 px, and
#: objects lie within 1 px of their detections.
OBJECT_MARGIN = 2 + EDGE_PX


# ------------------------------------------------------------------ tasks (run on the workers)
def window_statistics(spec: SceneSpec, core: Region, setup: det_cfar.CfarSetup, land_buffer_m: float) -> dict:
    """Pass 1 of a window: block sums of its core, provisional thresholds and candidates per band."""
    halo = (setup.outer_half + 1) * setup.block
    frame = core.grown(halo, spec)
    with SceneSources(spec) as src:
        read = read_region(src, frame, land_buffer_m)
    inner_blocks = (slice((core.r0 - frame.r0) // setup.block, (core.r0 - frame.r0) // setup.block
                          + -(-(core.r1 - core.r0) // setup.block)),
                    slice((core.c0 - frame.c0) // setup.block, (core.c0 - frame.c0) // setup.block
                          + -(-(core.c1 - core.c0) // setup.block)))
    names = ["vv", "vh"] if spec.vh_band else ["vv"]
    if read is None:  # all land: no valid pixel, no candidate
        nb = -(-(core.r1 - core.r0) // setup.block), -(-(core.c1 - core.c0) // setup.block)
        return {name: {"sums": tuple(np.zeros(nb) for _ in range(3)), "t_low": np.full(nb, np.nan),
                       "index": np.empty(0, np.int64), "values": np.empty(0, np.float32),
                       "block": np.empty(0, np.int64)} for name in names}
    bands, valid = read
    inner = np.s_[core.r0 - frame.r0:core.r1 - frame.r0, core.c0 - frame.c0:core.c1 - frame.c0]
    out = {}
    for name, band in bands.items():
        sums = det_cfar.block_sums(band, valid, setup.block)
        _, _, _, t_cen = det_cfar.cfar_thresholds(sums, setup, widen=False)
        t_low = det_cfar.CANDIDATE_MARGIN * t_cen[inner_blocks] * PROVISIONAL_SLACK
        rr, cc = det_cfar.exceeding(band[inner], t_low, setup.block, valid[inner])
        values = band[inner][rr, cc]
        out[name] = {"sums": tuple(a[inner_blocks] for a in sums), "t_low": t_low,
                     "index": (rr + core.r0).astype(np.int64) * spec.width + (cc + core.c0), "values": values,
                     "block": ((rr + core.r0) // setup.block).astype(np.int64) * -(-spec.width // setup.block)
                     + (cc + core.c0) // setup.block}
    return out


def _scan_box(src, core, name, t_box, box, block, land_buffer_m, idx, val):
    """:func:`window_scan` on one cluster of blocks: ``t_box`` on ``box`` of the window's block grid."""
    spec = src.spec
    rows, cols = np.nonzero(~np.isnan(t_box))
    if rows.size == 0:
        return
    t_box = t_box[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    br0, br1 = box[0].start + int(rows.min()), box[0].start + int(rows.max()) + 1
    bc0, bc1 = box[1].start + int(cols.min()), box[1].start + int(cols.max()) + 1
    sub = Region(core.r0 + br0 * block, min(core.r0 + br1 * block, core.r1),
                 core.c0 + bc0 * block, min(core.c0 + bc1 * block, core.c1))
    read = read_region(src, sub, land_buffer_m)
    if read is None:
        return
    bands, valid = read
    rr, cc = det_cfar.exceeding(bands[name], t_box, block, valid)
    idx.append((rr + sub.r0).astype(np.int64) * spec.width + (cc + sub.c0))
    val.append(bands[name][rr, cc])


def window_scan(spec: SceneSpec, core: Region, name: str, t_cand: np.ndarray, block: int,
                land_buffer_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact candidates of one band in a window core: pixels above ``t_cand`` (per block, NaN: not scanned).

    The blocks to scan are few and clustered (rings that needed widening,
    thresholds lowered by the censoring near bright targets): each cluster
    (blocks within ``SCAN_MERGE_BLOCKS`` of each other) is read on its own
    bounding box. Returns linear indices and values, row-major.
    """
    todo = ~np.isnan(t_cand)
    if not todo.any():
        return np.empty(0, np.int64), np.empty(0, np.float32)
    near = ndimage.binary_dilation(todo, np.ones((3, 3), bool), iterations=SCAN_MERGE_BLOCKS)
    groups, _ = ndimage.label(near, structure=np.ones((3, 3), bool))
    idx, val = [np.empty(0, np.int64)], [np.empty(0, np.float32)]
    with SceneSources(spec) as src:
        for label, box in enumerate(ndimage.find_objects(groups), start=1):
            # Only this cluster's blocks: another's may lie in its bounding box (and are read with their own).
            _scan_box(src, core, name, np.where(groups[box] == label, t_cand[box], np.nan), box, block,
                      land_buffer_m, idx, val)
    idx, val = np.concatenate(idx), np.concatenate(val)
    order = np.argsort(idx, kind="stable")
    return idx[order], val[order]


def box_vessels(spec: SceneSpec, items: list, block: int, params: dict) -> list:
    """Pass 3: the vessels of groups of detections, per item a list of ``((row, col), Vessel)`` or None.

    Each item is ``(box, owner, detections, own, backgrounds)``: the region
    read (block-aligned), the region an object's first pixel must lie in to
    be reported here, every CFAR detection in the box (rows, cols on the
    scene, by band), the group's own detection pixels (rows, cols) and the
    background grids of the box's blocks. Objects of other groups that
    reach into the box are left to their own item. None when a reported
    object reaches the box's edge (it may be cut: read a wider box).
    """
    with SceneSources(spec) as src:
        return [_box_vessels(src, *item, block, params) for item in items]


def _box_vessels(src, box, owner, detections, own, backgrounds, block, params):
    """:func:`box_vessels` for one item."""
    spec, (own_r, own_c) = src.spec, own
    bands, valid = read_region(src, box, params["land_buffer_m"])
    h, w = box.shape
    masks = {}
    for name, (rows, cols) in detections.items():
        m = np.zeros((h, w), dtype=bool)
        m[rows - box.r0, cols - box.c0] = True
        masks[name] = m
    labels, (lr0, lc0) = det_sar.cluster_detections(np.logical_or.reduce(list(masks.values())), valid)
    objects = ndimage.find_objects(labels)
    keep = np.zeros(len(objects), dtype=bool)
    inside = (own_r >= box.r0) & (own_r < box.r1) & (own_c >= box.c0) & (own_c < box.c1)
    keep[labels[own_r[inside] - box.r0 - lr0, own_c[inside] - box.c0 - lc0] - 1] = True
    firsts, cut = [], False
    for i, sl in enumerate(objects):
        top = labels[sl[0].start, sl[1]] == i + 1
        first = (sl[0].start + lr0 + box.r0, sl[1].start + int(np.argmax(top)) + lc0 + box.c0)
        firsts.append(first)
        keep[i] &= owner.r0 <= first[0] < owner.r1 and owner.c0 <= first[1] < owner.c1
        cut |= bool(keep[i]) and not (
            (box.r0 == 0 or sl[0].start + lr0 >= EDGE_PX) and (box.c0 == 0 or sl[1].start + lc0 >= EDGE_PX)
            and (box.r1 == spec.height or sl[0].stop + lr0 <= h - EDGE_PX)
            and (box.c1 == spec.width or sl[1].stop + lc0 <= w - EDGE_PX))
    if cut:
        return None
    bg = {name: det_cfar.CfarBackground(*grids, block=block) for name, grids in backgrounds.items()}
    part = det_sar.vessels_from_clusters(
        labels, (lr0, lc0), bands, masks, bg, spec.transform, spec.pixel_size, keep=keep,
        offset=(box.r0, box.c0), min_length_m=params["min_length_m"], max_length_m=params["max_length_m"],
        extent_db=params["extent_db"], resolution_m=params["resolution_m"])
    return [(firsts[label - 1], vessel) for label, vessel in part]


# ------------------------------------------------------------------ coordinator
def _run(engine, fn, arg_tuples: list[tuple]) -> list:
    if engine is not None and engine.parallel(len(arg_tuples)):
        return [f.result() for f in engine.submit_all(fn, arg_tuples, preload=__name__)]
    return [fn(*args) for args in arg_tuples]


def object_halo(params: dict, pixel_size: float, block: int) -> int:
    """Halo (px, a whole number of blocks) that holds any accepted vessel whose first pixel is in a region."""
    reach = math.sqrt(2.0) * (params["max_length_m"] + params["resolution_m"]) / pixel_size + 2 + EDGE_PX
    return int(math.ceil(reach / block)) * block


def _aligned(region: Region, spec: SceneSpec, block: int) -> Region:
    return Region(region.r0 // block * block, min(-(-region.r1 // block) * block, spec.height),
                  region.c0 // block * block, min(-(-region.c1 // block) * block, spec.width))


def group_objects(spec: SceneSpec, cores: list, detections: dict, halo: int, block: int) -> list:
    """Pass 3's work: ``(box, owner, own detections)`` per group of detections, and how many were split.

    Detection pixels (of any band) in 8-adjacent cells of ``GROUP_CELL_PX``
    form a group: an object never spans two. A group's box is its bounding
    box grown by ``OBJECT_MARGIN`` (block-aligned) and it owns all its
    objects. A group wider than a window (a dense anchorage, clutter on
    unmasked land) is split by the windows instead, to bound the memory of a
    task: each part owns the objects whose first pixel is in it and is read
    with ``halo`` around it.
    """
    rows = np.concatenate([r for r, _ in detections.values()])
    cols = np.concatenate([c for _, c in detections.values()])
    if rows.size == 0:
        return []
    cell = GROUP_CELL_PX
    occupied = np.zeros((-(-spec.height // cell), -(-spec.width // cell)), dtype=bool)
    occupied[rows // cell, cols // cell] = True
    groups, n = ndimage.label(occupied, structure=np.ones((3, 3), bool))
    gid = groups[rows // cell, cols // cell] - 1
    order = np.argsort(gid, kind="stable")
    starts = np.searchsorted(gid[order], np.arange(n + 1))
    limit = max(core.r1 - core.r0 for core in cores), max(core.c1 - core.c0 for core in cores)
    items, split = [], 0
    for g in range(n):
        sel = order[starts[g]:starts[g + 1]]
        own = rows[sel], cols[sel]
        extent = Region(int(own[0].min()), int(own[0].max()) + 1, int(own[1].min()), int(own[1].max()) + 1)
        if extent.shape[0] <= limit[0] and extent.shape[1] <= limit[1]:
            items.append((_aligned(extent.grown(OBJECT_MARGIN, spec), spec, block), extent.grown(1, spec), own))
            continue
        split += 1
        for core in cores:
            owner = Region(max(core.r0, extent.r0 - 1), min(core.r1, extent.r1 + 1),
                           max(core.c0, extent.c0 - 1), min(core.c1, extent.c1 + 1))
            if owner.r0 < owner.r1 and owner.c0 < owner.c1:
                items.append((_aligned(owner.grown(halo, spec), spec, block), owner, own))
    return items, split


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
        Receives counts (windows, candidates, rescans, object boxes, split groups).

    Returns
    -------
    list of Vessel
        In the order :func:`detectors.sar.detect_vessels_sar` gives them.
    """
    with _small_pages():
        return _scene_vessels(spec, params, engine, chunk, stats)


@contextlib.contextmanager
def _small_pages():
    """numpy without transparent huge pages in this process (for the duration).

    numpy asks the kernel for huge pages on every array above 4 MB; with the
    usual ``defrag=madvise`` setting each such fault may compact memory
    first. The coordinator makes hundreds of 13 MB block-grid temporaries:
    that was 7 of its 20 s on the IW scene. The LocalCluster's workers start
    with ``NUMPY_MADVISE_HUGEPAGE=0`` (:mod:`..core.engine`).
    """
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # another numpy layout: leave it as it is
        yield
        return
    previous = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(previous)


def _scene_vessels(spec: SceneSpec, params: dict, engine, chunk: int, stats: dict | None) -> list:
    """:func:`scene_vessels` (numpy's page setting aside)."""
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
    info = {"windows": len(cores), "candidates": 0, "rescanned_blocks": 0, "rescanned_strips": 0, "regrown_boxes": 0,
            "object_boxes": 0}
    detections, backgrounds = {}, {}

    def block_of(index):
        """Linear block number of linear pixel indices."""
        rows, cols = np.divmod(index, spec.width)
        return rows // block * nc + cols // block

    def censor_band(name):
        """Thresholds, candidates and censoring of one band; its detections and background grids."""
        binfo = dict.fromkeys(("candidates", "rescanned_blocks", "rescanned_strips"), 0)
        sums = tuple(np.zeros((nr, nc)) for _ in range(3))
        t_low = np.full((nr, nc), np.nan)
        for core, res in zip(cores, first):
            rs, cs = block_slices(core, block)
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
        blocks = np.concatenate([res[name]["block"] for res in first])
        keep = ~short.reshape(-1)[blocks]
        index, values, blocks = index[keep], values[keep], blocks[keep]  # incomplete where short: scanned below
        t_used = np.where(short, PROVISIONAL_SLACK * t_cand, t_low)
        t_used = np.where(sums[2] > 0, t_used, -np.inf)  # blocks without water hold no candidate

        def scanblock_slices(t):
            """Exact candidates where ``t`` (per block) is not NaN, row-major."""
            todo = []
            for core in cores:
                rs, cs = block_slices(core, block)
                if not np.isnan(t[rs, cs]).all():
                    # float32: what the comparison uses; half the bytes sent per round
                    todo.append((spec, core, name, t[rs, cs].astype(np.float32), block, land_buffer))
            parts = _run(engine, window_scan, todo)
            idx = np.concatenate([x[0] for x in parts] or [np.empty(0, np.int64)])
            val = np.concatenate([x[1] for x in parts] or [np.empty(0, np.float32)])
            order = np.argsort(idx, kind="stable")
            return idx[order], val[order]

        if short.any():
            binfo["rescanned_blocks"] += int(short.sum())
            idx, val = scanblock_slices(np.where(short, t_used, np.nan))
            index = np.concatenate([index, idx])
            values = np.concatenate([values, val])
            blocks = np.concatenate([blocks, block_of(idx)])
        order = np.argsort(index, kind="stable")
        # Every pixel above ``t_used`` (per block) is known, sorted row-major; a rescan reads only the
        # blocks whose threshold fell below it, the rest is filtered from what is known.
        known = {"index": index[order], "values": values[order], "block": blocks[order], "t_used": t_used}

        def scan(t, strips, known=known):
            strips = np.asarray(strips)
            binfo["rescanned_strips"] += int(strips.size)
            in_rows = np.zeros(nr, dtype=bool)
            for k in strips:
                in_rows[k * det_cfar.STRIP_BLOCKS:(k + 1) * det_cfar.STRIP_BLOCKS] = True
            lower = in_rows[:, None] & (t < known["t_used"])
            if lower.any():
                binfo["rescanned_blocks"] += int(lower.sum())
                idx, val = scanblock_slices(np.where(lower, PROVISIONAL_SLACK * t, np.nan))
                stay = ~lower.reshape(-1)[known["block"]]
                kept = {k: known[k][stay] for k in ("index", "values", "block")}
                at = np.searchsorted(kept["index"], idx)  # merge: both sorted, disjoint
                known["index"] = np.insert(kept["index"], at, idx)
                known["values"] = np.insert(kept["values"], at, val)
                known["block"] = np.insert(kept["block"], at, block_of(idx))
                known["t_used"] = np.where(lower, PROVISIONAL_SLACK * t, known["t_used"])
            kb = known["block"]
            sel = np.repeat(in_rows, nc)[kb] & (known["values"] > t.astype(np.float32).reshape(-1)[kb])
            idx = known["index"][sel]
            return idx // spec.width, idx % spec.width, known["values"][sel]

        all_strips = np.arange(-(-nr // det_cfar.STRIP_BLOCKS))
        index_r, index_c, values = scan(t_cand, all_strips)  # the exact candidates: nothing is read
        binfo["rescanned_strips"] -= int(all_strips.size)
        binfo["candidates"] += int(index_r.size)
        rr, cc, background = det_cfar.cfar_censor(
            sums, setup, thresholds, (index_r, index_c, values), scan, iterations)
        return (rr, cc), (background.mean, background.enl, background.threshold), binfo

    # The bands are independent: with workers elsewhere, the coordinator's two cores take one each.
    threads = len(names) if engine is not None and getattr(engine, "workers", 1) > 1 else 1
    with ThreadPoolExecutor(threads) as pool:
        for name, (found, grids, binfo) in zip(names, pool.map(censor_band, names)):
            detections[name], backgrounds[name] = found, grids
            for key, value in binfo.items():
                info[key] += value


    # Pass 3: objects, read on small boxes around groups of detections (grouped here, where all are known).
    pending, info["split_groups"] = group_objects(spec, cores, detections, object_halo(vparams, spec.pixel_size,
                                                                                       block), block)
    info["object_boxes"] = len(pending)
    found = []
    while pending:
        tasks: dict[int, list] = {}
        for box, owner, own in pending:  # batched by the window holding the box's corner
            near = {n: (r[m], c[m]) for n, (r, c) in detections.items()
                    for m in [(r >= box.r0) & (r < box.r1) & (c >= box.c0) & (c < box.c1)]}
            rs, cs = block_slices(box, block)
            grids = {n: tuple(a[rs, cs] for a in g) for n, g in backgrounds.items()}
            window = next(i for i, core in enumerate(cores)
                          if core.r0 <= box.r0 < core.r1 and core.c0 <= box.c0 < core.c1)
            tasks.setdefault(window, []).append((box, owner, near, own, grids))
        batches = [tasks[k] for k in sorted(tasks)]
        results = _run(engine, box_vessels, [(spec, b, block, vparams) for b in batches])
        retry = []
        for batch, result in zip(batches, results):
            for (box, owner, _, own, _), part in zip(batch, result):
                if part is None:
                    retry.append((_aligned(box.grown(max(box.shape), spec), spec, block), owner, own))
                else:
                    found += part
        info["regrown_boxes"] += len(retry)
        pending = retry
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
    log.info("scene-vessels: %d vessels in %s (%d windows, %d object boxes); %s", len(vessels), scene,
             stats["windows"], stats["object_boxes"], out)
    return len(vessels)
