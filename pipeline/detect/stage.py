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

Dates that need computing run on the engine of :mod:`..core.engine`:
``extra["scheduler"]`` (CLI ``--scheduler``: ``processes``, the default, or
a Dask cluster) with ``extra["workers"]`` workers (CLI ``--workers``;
default one per CPU, at most 8). Each task detects a few dates of one AOI
and writes their files to temporary names; this process renames them into
place and records them in date order (:mod:`.date_tasks`), so the output
bytes, the manifest and the lock do not depend on where the tasks ran.

Incremental: every date is a :class:`.manifest.Task` whose inputs are its
tiles, their STAC items and the AOI's reference files, and whose parameters
are the detector version, the hash of all detector parameters, a digest of
the detector source code and a digest of the AOI (polygon, zones, role), so
editing an AOI file recomputes its dates. A rerun skips what is current,
recomputes what changed and deletes detections whose tiles are gone.

Fault tolerance: a date that fails (corrupt tile, unreadable folder, detector
error) is listed in ``<out>/detections/failed.json`` and in the summary table
and makes the exit code 1; the other dates and AOIs complete, and a detection
the date had before is kept until a new good one replaces it
(:mod:`.failures`). Temporary files left by a killed run are removed first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections import defaultdict
from pathlib import Path

import hashlib
import json

from ..core.aoi import AOI, aoi_feature_collection
from ..core.atomic import remove_stale_temps
from ..core.contracts import SENSORS, TileRef, detection_path, find_tiles, timeseries_path, unreadable_date_folders
from ..core.errors import UserError, describe
from ..core.geojson_io import write_feature_collection
from ..core.manifest import MANIFEST_DIR, DirLock, Manifest, Task, params_hash, run_tasks
from ..core.options import RunOptions, progress
from ..core.engine import Engine, default_workers, engine_from_options
from .aoi_date import AoiContext, aoi_context, detect_aoi_date
from .date_tasks import claim, submit_dates
from .detection_files import detection_files, read_detection_files
from .geopackage import write_geopackage
from .failures import failed_path, print_summary, update_failed
from .params import DETECTOR_VERSION, detector_code_digest, detector_params
from .timeseries import write_timeseries
from .water_reference import ReferenceStore, build_references

log = logging.getLogger(__name__)

STAGE = "detect"


def _date_task(ctx: AoiContext, date: dt.date, tiles: list[TileRef], params: dict, fixed: dict,
               out_dir: Path, futures: dict, manifest: Manifest) -> Task:
    out = detection_path(out_dir, ctx.aoi.id, date)
    inputs = [p for t in tiles for p in (t.path, t.item)]
    inputs += ctx.reference.paths
    key = f"{ctx.aoi.id}/{date.isoformat()}"

    def run(task: Task) -> None:
        slot = futures.pop(key, None)
        if slot is not None:  # written by a worker: rename it into place
            future, index = slot
            claim(future.result()[index], out, manifest)
            return
        write_feature_collection(out, detect_aoi_date(ctx, date, tiles, params,
                                                      debug_features=fixed["debug_features"]))

    task = Task(key, [out], inputs, {**fixed, "reference": "time-series" if ctx.reference.path else "single-scene",
                                     "aoi": aoi_digest(ctx.aoi)}, run)
    task.meta.update(aoi=ctx.aoi, reference=ctx.reference, date=date, tiles=tiles)
    return task


def aoi_digest(aoi: AOI) -> str:
    """Digest of everything of the AOI that the detections depend on (polygon, zones, names, role)."""
    blob = json.dumps(aoi_feature_collection(aoi), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _submit_stale(tasks: list[Task], manifest: Manifest, force: bool, engine: Engine, params: dict,
                  futures: dict, debug_features: bool = False) -> None:
    """Start the dates that need computing on the engine (nothing when not worth it); see :mod:`.date_tasks`."""
    stale = [t for t in tasks if force or not manifest.is_current(t)]
    if engine.parallel(len(stale)):
        futures.update(submit_dates(stale, engine, params, debug_features))


def run_detect(opts: RunOptions) -> int:
    """Run the detect stage; return the exit code (1 when any AOI-date failed)."""
    data_dir, out_dir = Path(opts.data_dir), Path(opts.out_dir)
    if not (data_dir / "tiles").is_dir():
        raise UserError(f"{data_dir}: no tiles folder; run `berthwatch fetch` first (or pass --data-dir)")
    params = detector_params((opts.extra or {}).get("detector_params"))
    # debug_features changes what the files hold, so it is part of each output's parameters.
    fixed = {"stage": STAGE, "detector_version": DETECTOR_VERSION, "params_hash": params_hash(params),
             "code": detector_code_digest(), "debug_features": bool((opts.extra or {}).get("debug_features"))}
    out_dir.mkdir(parents=True, exist_ok=True)
    with DirLock(out_dir), contextlib.ExitStack() as stack:
        remove_stale_temps(out_dir / "detections", out_dir / MANIFEST_DIR)
        remove_stale_temps(out_dir, recursive=False)
        manifest = Manifest(out_dir, STAGE)
        store = ReferenceStore(out_dir, manifest)
        engine = stack.enter_context(engine_from_options(opts.extra, default_workers()))
        tasks: list[Task] = []
        futures: dict = {}
        failed: dict[str, str] = {}
        keys: set[str] = set()
        work = []
        for aoi in opts.aois:
            history = find_tiles(data_dir.absolute(), [aoi.id], opts.sensors)  # workers may have another cwd
            in_range = [t for t in history if (opts.start is None or t.date >= opts.start)
                        and (opts.end is None or t.date <= opts.end)]
            keys |= {f"{aoi.id}/{t.date.isoformat()}" for t in in_range}
            if history:
                work.append((aoi, history, in_range))
        references = build_references(store, [(aoi, history) for aoi, history, _ in work], params, engine)
        for (aoi, history, in_range), reference in zip(work, references):
            if isinstance(reference, Exception):  # the AOI's reference: its dates fail, other AOIs go on
                exc = reference
                log.debug("%s: reference failed", aoi.id, exc_info=exc)
                log.error("%s: reference water mask failed, its dates are skipped: %s", aoi.id, describe(exc))
                failed.update({f"{aoi.id}/{t.date.isoformat()}": f"reference of {aoi.id}: {describe(exc)}"
                               for t in in_range})
                continue
            ctx = aoi_context(aoi, reference)
            by_date: dict[dt.date, list[TileRef]] = defaultdict(list)
            for t in in_range:
                by_date[t.date].append(t)
            tasks += [_date_task(ctx, d, ts, params, fixed, out_dir, futures, manifest)
                      for d, ts in sorted(by_date.items())]
        for key, reason in unreadable_date_folders(data_dir, opts.aoi_ids, opts.sensors).items():
            day = key.split("/")[1]
            if day in SENSORS:
                log.warning("%s; its tiles are left out", reason)
            elif _in_range(day, opts.start, opts.end):
                log.error("%s: %s", key, reason)
                failed[key] = reason
                keys.add(key)
        tasks = [t for t in tasks if t.key not in failed]
        # Detections of dates that have no tiles any more go; those of dates about to be
        # computed stay until replaced (a date that fails keeps its earlier result).
        live = {manifest.rel(t.outputs[0]) for t in tasks}
        live |= {manifest.rel(detection_path(out_dir, k.split("/")[0], dt.date.fromisoformat(k.split("/")[1])))
                 for k in failed}
        removed = manifest.prune_orphans(lambda rel: rel.startswith("detections/") and rel not in live)
        manifest.save()
        _submit_stale(tasks, manifest, opts.force, engine, params, futures, fixed["debug_features"])
        result = run_tasks(manifest, tasks, force=opts.force, progress=lambda ts: progress(ts, "detect"))
        stack.close()  # release the workers before the table is rebuilt
        remove_stale_temps(out_dir / "detections")  # results of tasks lost with a worker, never claimed
        # A failed date keeps its earlier detection (and manifest entry, which no longer
        # matches its inputs, so the next run tries again).
        result.failed.update(failed)
        manifest.save()
        # Outputs pruned because the reference mask appeared or vanished were just recomputed.
        result.removed += [r for r in removed if not (out_dir / r).exists()]
        update_failed(out_dir, set(result.done) | set(result.skipped), result.failed, keys)
        parsed = read_detection_files(detection_files(out_dir))
        n_rows = write_timeseries(out_dir, parsed)
        write_geopackage(out_dir, parsed)
    print_summary(result.done, result.skipped, result.failed, result.removed, failed_path(out_dir))
    log.info("detect: %d done, %d up to date, %d failed, %d removed; %s has %d rows",
             len(result.done), len(result.skipped), len(result.failed), len(result.removed),
             timeseries_path(out_dir), n_rows)
    if not tasks and not result.failed:
        raise UserError(f"{data_dir}/tiles: no tiles for AOI {', '.join(opts.aoi_ids) or '(none)'}"
                        + (f" between {opts.start} and {opts.end}" if opts.start or opts.end else ""))
    return 1 if result.failed else 0


def _in_range(day: str, start: dt.date | None, end: dt.date | None) -> bool:
    try:
        d = dt.date.fromisoformat(day)
    except ValueError:
        return False
    return (start is None or d >= start) and (end is None or d <= end)
