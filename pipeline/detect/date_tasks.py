"""AOI-dates on the engine's workers: each task detects a few dates of one AOI and writes their files.

The process that runs the stage (the coordinator) keeps the manifest, the
lock and the progress; with one core per worker it must not compete with
them. So a worker does everything that costs per AOI-date: it reads the
tiles, runs the detectors, encodes the GeoJSON (the same bytes
:func:`..core.geojson_io.write_feature_collection` writes), writes it to a
temporary file beside its final name (synced to disk) and returns that
file's name with the SHA-256 of it and of the tiles it read
(:func:`..core.manifest.file_fingerprint`). The coordinator renames the
temporary file onto the detection (``os.replace``: atomic, and on a shared
file system the same rename every worker's host sees) and records it
without reading a byte of it.

So only the coordinator decides what becomes an output: a task that was
cancelled, lost with its worker or still running on a cluster after the run
ended leaves at most a temporary file, removed by the next run (under its
lock) or at the end of this one. Tasks group up to ``MAX_DATES_PER_TASK``
dates of one AOI (one context per task, and a scheduler round trip per
several dates instead of per date) while there are still several tasks per
worker to balance the load; a date that fails fails alone (its exception
is returned in its place).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..core.aoi import AOI
from ..core.atomic import write_temp_beside
from ..core.contracts import TileRef
from ..core.engine import Engine
from ..core.geojson_io import feature_collection_text
from ..core.manifest import Manifest, Task, file_fingerprint
from .aoi_date import aoi_context, detect_aoi_date
from .water_reference import ReferenceFiles

#: Most AOI-dates in one task.
MAX_DATES_PER_TASK = 8
#: Fewest tasks per worker before dates are grouped (the last tasks balance the load).
TASKS_PER_WORKER = 4


@dataclass(frozen=True)
class WrittenDate:
    """A detection a worker wrote to ``temp``, with the fingerprints of it and of its tiles (by path)."""

    temp: str
    output: dict
    inputs: dict[str, dict]


_worker_contexts: dict = {}
_worker_lock = threading.Lock()


def _detect_in_worker(aoi: AOI, reference: ReferenceFiles, dates: list[tuple[dt.date, list[TileRef], str]],
                      params: dict, debug_features: bool = False) -> list:
    """Dates of one AOI on a worker: per date a :class:`WrittenDate`, or the exception it raised.

    Each item of ``dates`` is ``(date, tiles, detection path)``; the AOI's
    reference is read from the output folder once per worker and AOI.
    """
    ctx_key = (aoi.id, reference.key)
    with _worker_lock:  # a Dask worker may run several tasks in threads
        ctx = _worker_contexts.get(ctx_key)
        if ctx is None:
            _worker_contexts.clear()
            ctx = _worker_contexts[ctx_key] = aoi_context(aoi, reference.load())
    results: list = []
    for date, tiles, out in dates:
        try:
            feats = detect_aoi_date(ctx, date, tiles, params, debug_features=debug_features)
            data = feature_collection_text(feats).encode("utf-8")
            temp = write_temp_beside(out, data)
            try:
                results.append(WrittenDate(str(temp), file_fingerprint(temp, data),
                                           {str(p): file_fingerprint(p) for t in tiles for p in (t.path, t.item)}))
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        except Exception as exc:  # this date fails; the others of the task go on
            results.append(exc)
    return results


def dates_per_task(n_dates: int, workers: int) -> int:
    """Dates of one AOI per task: up to ``MAX_DATES_PER_TASK`` while each worker keeps several tasks."""
    return max(1, min(MAX_DATES_PER_TASK, n_dates // (TASKS_PER_WORKER * max(workers, 1))))


def submit_dates(stale: list[Task], engine: Engine, params: dict, debug_features: bool = False) -> dict:
    """Start the stale dates on the engine, a few of one AOI per task; return ``{task key: (future, index)}``.

    Tasks carry the AOI's reference by its files (:class:`.water_reference.ReferenceFiles`)
    and the tiles by their paths, so nothing large is sent with them.
    """
    by_aoi: dict[str, list[Task]] = {}
    for t in stale:
        by_aoi.setdefault(t.meta["aoi"].id, []).append(t)
    size = dates_per_task(max(len(ts) for ts in by_aoi.values()) if by_aoi else 1, engine.workers)
    handles, groups, args = {}, [], []
    for tasks in by_aoi.values():
        for i in range(0, len(tasks), size):
            group = tasks[i:i + size]
            ref = group[0].meta["reference"]
            handle = handles.setdefault(id(ref), ref.files())
            groups.append(group)
            args.append((group[0].meta["aoi"], handle,
                         [(t.meta["date"], t.meta["tiles"], str(Path(t.outputs[0]).absolute())) for t in group],
                         params, debug_features))
    slots = {}
    for group, future in zip(groups, engine.submit_all(_detect_in_worker, args, preload=__name__)):
        shared = _GroupResult(future)
        slots.update({t.key: (shared, i) for i, t in enumerate(group)})
    return slots


class _GroupResult:
    """A task's future, fetched once for all its dates (a Dask ``result()`` is a round trip to a worker
    each time it is called: per date, that was a third of the coordinator's event-loop time)."""

    def __init__(self, future):
        self._future, self._value = future, None

    def result(self) -> list:
        if self._future is not None:
            self._value, self._future = self._future.result(), None  # the cluster may forget it now
        return self._value


def claim(written, out: Path, manifest: Manifest) -> None:
    """Make a worker's result the detection ``out`` (rename) and hand its fingerprints to the manifest.

    ``written`` is what :func:`_detect_in_worker` returned for the date: an
    exception is raised here, in the coordinator, as the date's failure.
    """
    if isinstance(written, BaseException):
        raise written
    os.replace(written.temp, out)
    manifest.add_fingerprints({**written.inputs, str(out): written.output})
