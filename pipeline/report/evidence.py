"""What lets a reader check the report: thumbnails, the vessel table, links to every data file.

* :func:`write_thumbnails` draws each AOI-date-sensor image with its
  detections (:mod:`.thumbnails`) into ``<report>/thumbnails/`` and returns
  the contact sheet's entries;
* :func:`vessel_rows` is the table of every detected vessel (date, AOI,
  lon/lat, length, sensor, score, whether the date is usable);
* :func:`data_links` lists every file the report was made from or beside it,
  as paths relative to the report folder (the links of ``index.html``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..core.atomic import write_bytes_atomic
from ..core.manifest import Manifest, Task
from ..core.contracts import S1, S2, TileRef, detection_path, timeseries_path
from .thumbnails import thumbnail_path, thumbnail_png, tiles_by_date

log = logging.getLogger(__name__)

SENSOR_LABEL = {S2: "Sentinel-2", S1: "Sentinel-1"}


def rel(path: Path, start: Path) -> str:
    """``path`` relative to ``start``, with forward slashes (a link in HTML)."""
    return Path(os.path.relpath(Path(path).absolute(), Path(start).absolute())).as_posix()


def planned_thumbnails(keys: list[tuple[str, dt.date]], data_dir: Path, dest: Path) -> list[tuple]:
    """``(aoi, date, sensor, tiles, path)`` for each AOI-date of ``keys`` and sensor with tiles on disk."""
    aois = sorted({a for a, _ in keys})
    tiles = tiles_by_date(data_dir, aois) if aois and (Path(data_dir) / "tiles").is_dir() else {}
    out = []
    for aoi, date in sorted(set(keys)):
        for sensor in (S2, S1):
            ts: list[TileRef] = tiles.get((aoi, date, sensor), [])
            if ts:
                out.append((aoi, date, sensor, ts, thumbnail_path(dest, aoi, date, sensor)))
    return out


def write_thumbnails(planned: list[tuple], observations, features: dict, aoi_objects: dict, params,
                     dest: Path, threads: int = 2, manifest: Manifest | None = None, code: str = "",
                     force: bool = False) -> list[dict]:
    """Draw and write the thumbnails of the observed sensors; one contact-sheet entry per image.

    ``threads`` draw at once: reading the tile, the stretch and the PNG encoding release
    Python's lock, so two threads use two cores. With a ``manifest`` (its caller saves it),
    each thumbnail is a task whose inputs are its tiles and whose parameters are its
    detections, caption, AOI outline, stamp and ``code`` (a digest of the drawing code): a
    thumbnail current there is kept, so a report over years of dates redraws only the dates
    whose tiles or detections changed (all of them with ``force``).
    """
    by_key = {(o.aoi, o.date): o for o in observations}
    tasks, entries = [], []
    for aoi, date, sensor, ts, path in planned:
        o = by_key.get((aoi, date))
        if o is None or sensor not in o.clear:
            continue
        feats = features.get((o.aoi, o.date), [])
        obj = aoi_objects.get(o.aoi)
        geometry = obj.geometry if obj else None
        usable = o.sensor_usable(sensor, params)
        n = sum(1 for f in feats if (f.get("properties") or {}).get("kind") == "vessel")
        caption = (f"{o.aoi} {o.date.isoformat()} {SENSOR_LABEL[sensor]}: {round(100 * o.clear[sensor])} % of the AOI "
                   f"clear, {'usable' if usable else 'not usable'}; {n} vessels on the date")

        def draw(_task, ts=ts, feats=feats, geometry=geometry, simulated=o.simulated, caption=caption, path=path):
            write_bytes_atomic(path, thumbnail_png(ts, feats, geometry, simulated, caption))

        drawn_from = {"detections": feats, "caption": caption, "aoi": geometry.wkt if geometry is not None else None,
                      "simulated": o.simulated, "code": code}  # the manifest keeps their hash
        tasks.append(Task(str(path), [path], [t.path for t in ts], drawn_from, draw))
        entries.append({"aoi": o.aoi, "date": o.date, "sensor": sensor, "label": SENSOR_LABEL[sensor],
                        "href": rel(path, dest), "clear_fraction": o.clear[sensor], "usable": usable, "vessels": n,
                        "detections": rel(Path(o.source), dest) if o.source else None,
                        "tiles": [rel(t.path, dest) for t in ts]})
    stale = [t for t in tasks if manifest is None or force or not manifest.is_current(t)]
    if threads <= 1 or len(stale) < 2:
        for t in stale:
            t.run(t)
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="thumbnail") as pool:
            list(pool.map(lambda t: t.run(t), stale))
    if manifest is not None:
        for t in stale:
            manifest.record(t)
    return entries


def vessel_rows(observations, features: dict, params) -> list[dict]:
    """Every detected vessel, by AOI and date; ``usable`` says whether its date counts."""
    rows = []
    for o in sorted(observations, key=lambda o: (o.aoi, o.date)):
        for f in features.get((o.aoi, o.date), []):
            p = f.get("properties") or {}
            if p.get("kind") != "vessel":
                continue
            rows.append({"id": p.get("id"), "date": o.date, "aoi": o.aoi, "lon": p.get("lon"), "lat": p.get("lat"),
                         "length_m": p.get("length_m"), "width_m": p.get("width_m"), "sensor": p.get("sensor"),
                         "sensors": p.get("sensors") or [p.get("sensor")], "score": p.get("score"),
                         "at_berth": bool(p.get("at_berth")), "usable": o.usable(params)})
    return rows


def data_links(out_dir: Path, dest: Path, observations, extra: dict[str, Path] | None = None) -> list[dict]:
    """The run's data files that exist, as ``{"label", "href"}`` relative to the report folder."""
    out_dir = Path(out_dir)
    links = []
    for label, path in (("time series (CSV, one row per AOI and date)", timeseries_path(out_dir)),
                        ("all detections (GeoPackage: summaries, vessels, stacks)", out_dir / "detections.gpkg"),
                        ("summary.json (machine-readable results)", dest / "summary.json"),
                        ("report.md (this report as Markdown)", dest / "report.md"), *(extra or {}).items()):
        if Path(path).exists() or Path(path).parent == dest:
            links.append({"label": label, "href": rel(path, dest)})
    for o in sorted(observations, key=lambda o: (o.aoi, o.date)):
        path = Path(o.source) if o.source else detection_path(out_dir, o.aoi, o.date)
        links.append({"label": f"detections {o.aoi} {o.date.isoformat()} (GeoJSON)", "href": rel(path, dest)})
    return links


def thumbnail_outputs(planned: list[tuple]) -> list[Path]:
    return [p for *_, p in planned]


def thumbnail_inputs(planned: list[tuple]) -> list[Path]:
    return sorted({t.path for *_, ts, _ in planned for t in ts})


def dates_without_tiles(observations, entries: list[dict]) -> list[tuple[str, dt.date]]:
    """AOI-dates of the report with no image drawn (their tiles are not under ``--data-dir``)."""
    have = {(e["aoi"], e["date"]) for e in entries}
    return sorted({(o.aoi, o.date) for o in observations} - have)
